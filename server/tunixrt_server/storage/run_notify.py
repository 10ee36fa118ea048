"""Wake-ups for run watchers across processes: PostgreSQL LISTEN/NOTIFY.

A worker on another machine writes a run's events to the database; without a
notification, an API server's watchers would see them only at their next poll.
The notification goes out in the writer's transaction, so it arrives after the
events are visible. SQLite has no such channel: there, the worker's stdout wakes
its own server and other servers poll.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable

import sqlalchemy as sa

log = logging.getLogger("tunixrt.storage")
CHANNEL = "tunixrt_run_changed"


def notify(conn: sa.Connection, run_id: str, state_changed: bool) -> None:
    """Tell listeners, at commit, that `run_id` has something new (and whether its
    state changed: a scheduler only cares about that)."""
    if conn.dialect.name == "postgresql":
        payload = f"{run_id} state" if state_changed else run_id
        conn.execute(sa.select(sa.func.pg_notify(CHANNEL, payload)))


class Listener:
    """A thread holding one connection that LISTENs and calls
    `on_change(run_id, state_changed)`; it reconnects after errors (watchers still
    poll in the meantime)."""

    def __init__(self, url: sa.URL, on_change: Callable[[str, bool], None]) -> None:
        self._connect_args = {
            **url.translate_connect_args(username="user", database="dbname"),
            **{k: v for k, v in url.query.items() if isinstance(v, str)},
        }
        self._on_change = on_change
        # Its own channel, so stop() can wake it without waking other listeners.
        self._wake_channel = f"tunixrt_wake_{uuid.uuid4().hex}"
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="run-notify", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Wakes the thread from its wait for notifications (a shutdown would
        otherwise wait out the poll interval, a second) and joins it."""
        import psycopg

        self._stopped.set()
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(**self._connect_args, autocommit=True, connect_timeout=2) as conn,
        ):
            conn.execute("SELECT pg_notify(%s, '')", (self._wake_channel,))
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg

        while not self._stopped.is_set():
            try:
                with psycopg.connect(**self._connect_args, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    conn.execute(f"LISTEN {self._wake_channel}")
                    while not self._stopped.is_set():
                        for note in conn.notifies(timeout=1.0):
                            if note.channel != CHANNEL:
                                break
                            run_id, _, state = note.payload.partition(" ")
                            self._on_change(run_id, state == "state")
            except psycopg.Error as exc:
                log.warning("run notifications: %s; retrying", exc)
                self._stopped.wait(2.0)
