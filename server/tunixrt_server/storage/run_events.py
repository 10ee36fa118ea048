"""A run's event log: numbered 1, 2, 3, ... per run, appended in the writer's transaction.

Sequence numbers come from the run row (`last_sequence`), whose UPDATE takes the
write lock: concurrent writers queue instead of reusing a number. Every append
notifies watchers in other processes (run_notify).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from . import run_notify
from .schema import training_events, training_runs
from .traces import now_us


@dataclass(frozen=True, slots=True)
class Event:
    sequence: int
    step: int
    time_us: int
    kind: str  # the TrainingEvent oneof field: step_metrics, eval_metrics, state_change, ...
    payload: dict[str, Any]


# (step, kind, payload, time_us or 0 for now): workers stamp events when they
# happen, not when they reach the database.
NewEvent = tuple[int, str, dict[str, Any], int]


def append(conn: sa.Connection, run_seq: int, events: Sequence[NewEvent]) -> int:
    """Appends in the caller's transaction; returns the last sequence number."""
    last, run_id = conn.execute(
        training_runs.update()
        .where(training_runs.c.seq == run_seq)
        .values(last_sequence=training_runs.c.last_sequence + len(events))
        .returning(training_runs.c.last_sequence, training_runs.c.id)
    ).one()
    first, now = last - len(events) + 1, now_us()
    conn.execute(
        training_events.insert(),
        [
            {
                "run_seq": run_seq,
                "sequence": first + n,
                "step": step,
                "time_us": time_us or now,
                "kind": kind,
                "payload": payload,
            }
            for n, (step, kind, payload, time_us) in enumerate(events)
        ],
    )
    run_notify.notify(conn, run_id, any(kind == "state_change" for _, kind, _, _ in events))
    return int(last)


def read(conn: sa.Connection, run_seq: int, after_sequence: int, limit: int) -> list[Event]:
    query = (
        sa.select(
            training_events.c.sequence,
            training_events.c.step,
            training_events.c.time_us,
            training_events.c.kind,
            training_events.c.payload,
        )
        .where(
            training_events.c.run_seq == run_seq,
            training_events.c.sequence > after_sequence,
        )
        .order_by(training_events.c.sequence)
        .limit(limit)
    )
    return [Event(*row) for row in conn.execute(query)]
