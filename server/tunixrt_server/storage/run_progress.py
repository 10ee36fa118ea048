"""What a run's worker writes: claims, state transitions, heartbeats with progress,
and the spec it resolved. Each write is one transaction that also appends the
run's events (run_events.py), so the log and the run never disagree, and every
write by a worker carries its attempt: a stale worker's writes miss."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa

from ..core.run_state import UNFINISHED
from ..core.runspec import RunSpec
from . import run_events
from .run_events import NewEvent
from .run_rows import COLUMNS, QUEUED, RUNNING, StoredRun, get, owned_by, stored
from .schema import training_runs
from .traces import now_us


class RunProgress:
    """The worker's side of RunStore (which adds the API's reads and creates)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

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
        return get(conn, training_runs.c.seq == seq)

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
                sa.select(*COLUMNS).where(
                    training_runs.c.state == RUNNING,
                    sa.or_(
                        training_runs.c.heartbeat_us.is_(None),
                        training_runs.c.heartbeat_us < older_than_us,
                    ),
                )
            )
            return [stored(row) for row in rows]

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
                .where(owned_by(run_id, attempt))
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
                    .where(owned_by(run_id, attempt))
                    .values(spec=spec.to_json())
                ).rowcount
                > 0
            )
