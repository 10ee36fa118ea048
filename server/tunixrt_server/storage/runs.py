"""Training runs.

Every change of state is one transaction that updates the run and appends its
state_change event to the run's log (run_events.py), so the log and the run
never disagree.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..filters import Condition
from ..run_state import UNFINISHED, RunState
from ..runspec import RunSpec
from . import run_events, run_notify
from .filtering import runs_where
from .run_events import Event, NewEvent
from .schema import training_runs
from .traces import now_us

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


_COLUMNS = tuple(training_runs.c[f] for f in StoredRun.__dataclass_fields__)
_SPEC = list(StoredRun.__dataclass_fields__).index("spec")


def _stored(row: Sequence[Any]) -> StoredRun:
    values = list(row)
    values[_SPEC] = RunSpec.from_json(values[_SPEC])
    return StoredRun(*values)


def _owned_by(run_id: str, attempt: int) -> sa.ColumnElement[bool]:
    """The run, while this attempt's worker still runs it (a later attempt or a
    state change by another process makes the worker's writes miss)."""
    return sa.and_(
        training_runs.c.id == run_id,
        training_runs.c.attempt == attempt,
        training_runs.c.state == RUNNING,
    )


class RunExists(Exception):
    """The request_id was used before; carries the run it created."""

    def __init__(self, run: StoredRun) -> None:
        super().__init__(run.id)
        self.run = run


class RunStore:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def listener(self, on_change: Callable[[str, bool], None]) -> run_notify.Listener | None:
        """Calls `on_change(run_id, state_changed)` from a thread when any process
        appends events to a run (PostgreSQL); None where the database has no
        notifications (SQLite)."""
        if self._engine.dialect.name != "postgresql":
            return None
        return run_notify.Listener(self._engine.url, on_change)

    # -- reading --

    def get(self, run_id: str) -> StoredRun | None:
        with self._engine.connect() as conn:
            return self._get(conn, training_runs.c.id == run_id)

    @staticmethod
    def _get(conn: sa.Connection, condition: sa.ColumnElement[bool]) -> StoredRun | None:
        row = conn.execute(sa.select(*_COLUMNS).where(condition)).first()
        return _stored(row) if row else None

    def page(
        self,
        limit: int,
        before_seq: int | None,
        state: int | None,
        conditions: Sequence[Condition] = (),
    ) -> list[StoredRun]:
        """Newest first; `conditions` from a RUNS filter (filters.parse_run_filter)."""
        query = sa.select(*_COLUMNS).order_by(training_runs.c.seq.desc()).limit(limit)
        query = query.where(runs_where(conditions))
        if before_seq is not None:
            query = query.where(training_runs.c.seq < before_seq)
        if state is not None:
            query = query.where(training_runs.c.state == state)
        with self._engine.connect() as conn:
            return [_stored(row) for row in conn.execute(query)]

    def in_state(self, states: Collection[int]) -> list[StoredRun]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(*_COLUMNS)
                .where(training_runs.c.state.in_(states))
                .order_by(training_runs.c.seq)
            )
            return [_stored(row) for row in rows]

    def events(self, run_seq: int, after_sequence: int, limit: int = 1_000) -> list[Event]:
        with self._engine.connect() as conn:
            return run_events.read(conn, run_seq, after_sequence, limit)

    def count_by_state(self) -> dict[int, int]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(training_runs.c.state, sa.func.count()).group_by(training_runs.c.state)
            )
            return {int(state): int(count) for state, count in rows}

    def unfinished_for_dataset(self, dataset_key: str) -> list[str]:
        with self._engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(training_runs.c.id).where(
                        training_runs.c.dataset_key == dataset_key,
                        training_runs.c.state.in_(UNFINISHED),
                    )
                ).scalars()
            )

    # -- writing --

    def create(
        self,
        dataset_key: str,
        spec: RunSpec,
        created_by: str,
        labels: dict[str, str],
        request_id: str | None,
    ) -> StoredRun:
        run_id = str(uuid.uuid4())
        try:
            with self._engine.begin() as conn:
                seq = conn.execute(
                    training_runs.insert().values(
                        id=run_id,
                        dataset_key=dataset_key,
                        spec=spec.to_json(),
                        state=QUEUED,
                        state_message="waiting for a worker",
                        created_by=created_by,
                        labels=labels,
                        create_time_us=now_us(),
                        metrics={},
                        checkpoint_step=0,
                        best_checkpoint_step=0,
                        evaluations=[],
                        attempt=0,
                        last_sequence=0,
                        cancel_requested=False,
                        request_id=request_id,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
                run_events.append(
                    conn, seq, [(0, "state_change", {"state": QUEUED, "message": "queued"}, 0)]
                )
        except sa.exc.IntegrityError:
            existing = self._by_request(request_id)
            if existing is None:
                raise
            raise RunExists(existing) from None
        found = self.get(run_id)
        assert found is not None
        return found

    def _by_request(self, request_id: str | None) -> StoredRun | None:
        if request_id is None:
            return None
        with self._engine.connect() as conn:
            return self._get(conn, training_runs.c.request_id == request_id)

    def transition(
        self,
        run_id: str,
        to_state: int,
        message: str,
        *,
        from_states: Collection[int],
        owner_attempt: int | None = None,
        step: int = 0,
        events_before: Sequence[NewEvent] = (),
        **values: Any,
    ) -> StoredRun | None:
        """Move a run from one of `from_states` to `to_state` (and, with `owner_attempt`,
        only while that attempt still owns it), logging the change. None when the
        run was not in such a state: someone else moved it first."""
        with self._engine.begin() as conn:
            return self._transition(
                conn,
                run_id,
                to_state,
                message,
                from_states=from_states,
                owner_attempt=owner_attempt,
                step=step,
                events_before=events_before,
                values=values,
            )

    def _transition(
        self,
        conn: sa.Connection,
        run_id: str,
        to_state: int,
        message: str,
        *,
        from_states: Collection[int],
        owner_attempt: int | None,
        step: int,
        events_before: Sequence[NewEvent],
        values: dict[str, Any],
    ) -> StoredRun | None:
        condition = sa.and_(training_runs.c.id == run_id, training_runs.c.state.in_(from_states))
        if owner_attempt is not None:
            condition = sa.and_(condition, training_runs.c.attempt == owner_attempt)
        if to_state not in UNFINISHED:
            values.setdefault("end_time_us", now_us())
        seq = conn.execute(
            training_runs.update()
            .where(condition)
            .values(state=to_state, state_message=message, **values)
            .returning(training_runs.c.seq)
        ).scalar()
        if seq is None:
            return None
        state_change = (step, "state_change", {"state": to_state, "message": message}, 0)
        run_events.append(conn, seq, [*events_before, state_change])
        return self._get(conn, training_runs.c.seq == seq)

    def claim_next(self) -> StoredRun | None:
        """The oldest QUEUED run, moved to RUNNING for a new attempt. Servers sharing
        a PostgreSQL database skip rows another is claiming (FOR UPDATE SKIP LOCKED),
        and the state condition of the UPDATE makes a double claim impossible."""
        with self._engine.begin() as conn:
            run_id = conn.execute(
                sa.select(training_runs.c.id)
                .where(training_runs.c.state == QUEUED)
                .order_by(training_runs.c.seq)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).scalar()
            if run_id is None:
                return None
            now = now_us()
            return self._transition(
                conn,
                run_id,
                RUNNING,
                "training",
                from_states=(QUEUED,),
                owner_attempt=None,
                step=0,
                events_before=(),
                values={
                    "start_time_us": now,
                    "heartbeat_us": now,
                    "attempt": training_runs.c.attempt + 1,
                    "cancel_requested": False,
                },
            )

    def stale_running(self, older_than_us: int) -> list[StoredRun]:
        """RUNNING runs whose worker has not been heard from since `older_than_us`."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(*_COLUMNS).where(
                    training_runs.c.state == RUNNING,
                    sa.or_(
                        training_runs.c.heartbeat_us.is_(None),
                        training_runs.c.heartbeat_us < older_than_us,
                    ),
                )
            )
            return [_stored(row) for row in rows]

    def record_progress(
        self,
        run_id: str,
        attempt: int,
        events: Sequence[NewEvent],
        metrics: dict[str, Any],
        checkpoint_step: int,
        best_checkpoint_step: int,
    ) -> bool | None:
        """A worker's progress: events plus the run's running metrics, in one
        transaction. Returns whether a cancel was requested; None when the
        attempt no longer owns the run."""
        with self._engine.begin() as conn:
            row = conn.execute(
                training_runs.update()
                .where(_owned_by(run_id, attempt))
                .values(
                    metrics=metrics,
                    checkpoint_step=checkpoint_step,
                    best_checkpoint_step=best_checkpoint_step,
                    heartbeat_us=now_us(),
                )
                .returning(training_runs.c.seq, training_runs.c.cancel_requested)
            ).first()
            if row is None:
                return None
            if events:
                run_events.append(conn, row[0], events)
            return bool(row[1])

    def record_spec(self, run_id: str, attempt: int, spec: RunSpec) -> bool:
        """The worker's resolution of data-dependent settings (max_seq_len 0); False
        when the attempt no longer owns the run."""
        with self._engine.begin() as conn:
            return (
                conn.execute(
                    training_runs.update()
                    .where(_owned_by(run_id, attempt))
                    .values(spec=spec.to_json())
                ).rowcount
                > 0
            )

    def started_from(self, run_dir: str) -> list[str]:
        """Runs whose model starts from `run_dir` (their model.local_path)."""
        local_path = training_runs.c.spec["model"]["local_path"].as_string()
        with self._engine.connect() as conn:
            return list(
                conn.execute(sa.select(training_runs.c.id).where(local_path == run_dir)).scalars()
            )

    def delete(self, run_id: str) -> bool:
        """An ended run and (by cascade) its events."""
        with self._engine.begin() as conn:
            return (
                conn.execute(
                    training_runs.delete().where(
                        training_runs.c.id == run_id, training_runs.c.state.notin_(UNFINISHED)
                    )
                ).rowcount
                > 0
            )

    def request_cancel(self, run_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                training_runs.update()
                .where(training_runs.c.id == run_id, training_runs.c.state == RUNNING)
                .values(cancel_requested=True)
            )

    def add_evaluation(self, run_id: str, evaluation: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            current = conn.execute(
                sa.select(training_runs.c.evaluations).where(training_runs.c.id == run_id)
            ).scalar_one()
            conn.execute(
                training_runs.update()
                .where(training_runs.c.id == run_id)
                .values(evaluations=[*current, evaluation])
            )
