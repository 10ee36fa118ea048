"""Trace persistence."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..filters import Condition
from ..validation import NewTrace
from .filtering import where
from .schema import traces


@dataclass(frozen=True, slots=True)
class StoredTrace:
    seq: int
    id: str
    create_time_us: int
    trace_version: str
    prompt: str
    final_answer: str
    steps_json: str
    meta: dict[str, Any]


_COLUMNS = (
    traces.c.seq,
    traces.c.id,
    traces.c.create_time_us,
    traces.c.trace_version,
    traces.c.prompt,
    traces.c.final_answer,
    traces.c.steps_json,
    traces.c.meta,
)


def now_us() -> int:
    return time.time_ns() // 1_000


def _row(trace: NewTrace, now: int, request_id: str | None) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "create_time_us": now,
        "trace_version": trace.trace_version,
        "prompt": trace.prompt,
        "final_answer": trace.final_answer,
        "steps_json": trace.steps_json.decode(),
        "meta": trace.meta,
        "source": trace.source,
        "category": trace.category,
        "step_count": len(trace.steps),
        "char_count": trace.char_count,
        "request_id": request_id,
    }


class TraceStore:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def insert_batch(self, batch: Sequence[NewTrace]) -> int:
        """Store a batch in one transaction: all of it or, on any error, none."""
        now = now_us()
        rows = [_row(t, now, None) for t in batch]
        with self._engine.begin() as conn:
            conn.execute(traces.insert(), rows)
        return len(rows)

    def create(self, trace: NewTrace, request_id: str | None) -> StoredTrace:
        """Store one trace; a known request_id returns the trace stored with it."""
        if request_id:
            existing = self._get_where(traces.c.request_id == request_id)
            if existing:
                return existing
        row = _row(trace, now_us(), request_id or None)
        try:
            with self._engine.begin() as conn:
                conn.execute(traces.insert(), row)
        except sa.exc.IntegrityError:
            # A concurrent retry with the same request_id won the race.
            existing = self._get_where(traces.c.request_id == request_id) if request_id else None
            if existing is None:
                raise
            return existing
        found = self._get_where(traces.c.id == row["id"])
        assert found is not None
        return found

    def _get_where(self, clause: sa.ColumnElement[bool]) -> StoredTrace | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(*_COLUMNS).where(clause)).first()
        return StoredTrace(*row) if row else None

    def get(self, trace_id: str) -> StoredTrace | None:
        return self._get_where(traces.c.id == trace_id)

    def list(
        self, conditions: Sequence[Condition], limit: int, before_seq: int | None
    ) -> list[StoredTrace]:
        """Newest first; `before_seq` is the keyset cursor of the previous page."""
        query = sa.select(*_COLUMNS).where(where(conditions))
        if before_seq is not None:
            query = query.where(traces.c.seq < before_seq)
        query = query.order_by(traces.c.seq.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [StoredTrace(*row) for row in conn.execute(query)]

    def delete(self, trace_id: str) -> bool:
        with self._engine.begin() as conn:
            return conn.execute(traces.delete().where(traces.c.id == trace_id)).rowcount > 0
