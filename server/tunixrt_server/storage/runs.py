"""Training runs: what the API reads and writes (run_progress.py: what workers
write; run_rows.py: the row). Every change of state is one transaction that
updates the run and appends its state_change event to the run's log
(run_events.py), so the log and the run never disagree.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from typing import Any

import sqlalchemy as sa

from ..core.filters import Condition
from ..core.run_state import UNFINISHED
from ..core.runspec import RunSpec
from . import run_events, run_notify
from .filtering import runs_where
from .run_events import Event
from .run_progress import RunProgress
from .run_rows import COLUMNS, QUEUED, RUNNING, StoredRun, get, stored
from .schema import training_runs
from .traces import now_us

__all__ = ["RunExists", "RunStore", "StoredRun"]


class RunExists(Exception):
    """The request_id was used before; carries the run it created."""

    def __init__(self, run: StoredRun) -> None:
        super().__init__(run.id)
        self.run = run


class RunStore(RunProgress):
    """Runs for the API: reads, creates, cancels and deletes; RunProgress holds what
    their workers write."""

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
            return get(conn, training_runs.c.id == run_id)

    def page(
        self,
        limit: int,
        before_seq: int | None,
        state: int | None,
        conditions: Sequence[Condition] = (),
    ) -> list[StoredRun]:
        """Newest first; `conditions` from a RUNS filter (filters.parse_run_filter)."""
        query = sa.select(*COLUMNS).order_by(training_runs.c.seq.desc()).limit(limit)
        query = query.where(runs_where(conditions))
        if before_seq is not None:
            query = query.where(training_runs.c.seq < before_seq)
        if state is not None:
            query = query.where(training_runs.c.state == state)
        with self._engine.connect() as conn:
            return [stored(row) for row in conn.execute(query)]

    def in_state(self, states: Collection[int]) -> list[StoredRun]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(*COLUMNS)
                .where(training_runs.c.state.in_(states))
                .order_by(training_runs.c.seq)
            )
            return [stored(row) for row in rows]

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
            return get(conn, training_runs.c.request_id == request_id)

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
