"""Bulk INSERT straight to the DB-API cursor with a statement compiled once.

SQLAlchemy's executemany converts every row dict to the driver's parameter
form in Python, which for small rows costs as much as the INSERT itself. Bulk
ingest compiles the Core statement once for the engine's dialect and hands
tuples (or dicts, for drivers with named parameters) to cursor.executemany.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa


class FastInsert:
    def __init__(self, engine: sa.Engine, statement: sa.Insert, keys: Sequence[str]) -> None:
        compiled = statement.compile(dialect=engine.dialect, column_keys=list(keys))
        self._sql = str(compiled)
        self._keys = tuple(keys)
        # qmark drivers (sqlite3) take tuples; the statement's parameter order
        # must then match `keys`, which holds for an INSERT of those keys.
        self._positional = compiled.positiontup is not None
        if self._positional and tuple(compiled.positiontup or ()) != self._keys:
            raise ValueError(f"parameter order {compiled.positiontup} != {self._keys}")

    def __call__(self, conn: sa.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        params: Sequence[Any] = (
            rows if self._positional else [dict(zip(self._keys, row, strict=True)) for row in rows]
        )
        conn.exec_driver_sql(self._sql, params)
