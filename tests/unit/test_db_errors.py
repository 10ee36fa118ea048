"""Which database errors mean "cannot be reached" (UNAVAILABLE) and which do not,
on the drivers' own exceptions (storage/db.py)."""

from __future__ import annotations

import sqlite3

import psycopg
import sqlalchemy as sa
from psycopg import errors

from tunixrt_server.storage.db import database_unreachable, disk_full


def wrapped(exc: Exception) -> sa.exc.OperationalError:
    return sa.exc.OperationalError("SELECT 1", {}, exc)


def test_postgresql_refused_lost_or_shutting_down_is_unreachable() -> None:
    assert database_unreachable(wrapped(psycopg.OperationalError("connection refused")))
    for sqlstate in ("08006", "08001", "57P01", "57P03"):  # lost, refused, shutdown, starting
        assert database_unreachable(wrapped(errors.lookup(sqlstate)("x"))), sqlstate


def test_a_sqlite_file_that_cannot_be_opened_is_unreachable() -> None:
    cantopen = sqlite3.OperationalError("unable to open database file")
    cantopen.sqlite_errorcode = 14
    assert database_unreachable(wrapped(cantopen))


def test_a_lock_a_full_disk_or_a_constraint_is_not() -> None:
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorcode = 5
    assert not database_unreachable(wrapped(locked))
    full = errors.lookup("53100")("disk full")
    assert not database_unreachable(wrapped(full)) and disk_full(wrapped(full))
    assert not database_unreachable(wrapped(errors.lookup("23505")("duplicate key")))
    assert not database_unreachable(ValueError("not a database error"))
