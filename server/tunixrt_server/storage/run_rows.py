"""A training run's row as the stores read it, and the condition of ownership that
every write by a worker carries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..core.run_state import RunState
from ..core.runspec import RunSpec
from .schema import training_runs

QUEUED, RUNNING = RunState.QUEUED, RunState.RUNNING


@dataclass(frozen=True, slots=True)
class StoredRun:
    seq: int
    id: str
    dataset_key: str
    spec: RunSpec
    state: int
    state_message: str
    created_by: str
    labels: dict[str, str]
    create_time_us: int
    start_time_us: int | None
    end_time_us: int | None
    metrics: dict[str, Any]
    checkpoint_step: int
    best_checkpoint_step: int
    evaluations: list[dict[str, Any]]
    attempt: int
    heartbeat_us: int | None
    last_sequence: int
    cancel_requested: bool
    request_id: str | None


COLUMNS = tuple(training_runs.c[f] for f in StoredRun.__dataclass_fields__)
_SPEC = list(StoredRun.__dataclass_fields__).index("spec")


def stored(row: Sequence[Any]) -> StoredRun:
    values = list(row)
    values[_SPEC] = RunSpec.from_json(values[_SPEC])
    return StoredRun(*values)


def owned_by(run_id: str, attempt: int) -> sa.ColumnElement[bool]:
    """The run, while this attempt's worker still runs it (a later attempt or a
    state change by another process makes the worker's writes miss)."""
    return sa.and_(
        training_runs.c.id == run_id,
        training_runs.c.attempt == attempt,
        training_runs.c.state == RUNNING,
    )


def get(conn: sa.Connection, condition: sa.ColumnElement[bool]) -> StoredRun | None:
    row = conn.execute(sa.select(*COLUMNS).where(condition)).first()
    return stored(row) if row else None
