"""Trace persistence."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from ..core.filters import Condition
from ..core.rendering import ExportRow
from ..core.validation import NewTrace
from .bulk import FastInsert
from .filtering import where
from .schema import JsonType, dataset_items, datasets, traces
from .usage import TraceInUse


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
    step_count: int


_LARGE = ("prompt", "final_answer", "steps_json")
_COLUMNS = (
    traces.c.seq,
    traces.c.id,
    traces.c.create_time_us,
    traces.c.trace_version,
    traces.c.prompt,
    traces.c.final_answer,
    traces.c.steps_json,
    traces.c.meta,
    traces.c.step_count,
)
# A basic view reads none of the large text columns.
_BASIC_COLUMNS = tuple(
    sa.literal(empty).label(c.name) if c.name in _LARGE else c
    for c, empty in ((c, "[]" if c.name == "steps_json" else "") for c in _COLUMNS)
)


def now_us() -> int:
    return time.time_ns() // 1_000


def export_columns(meta: bool) -> tuple[sa.ColumnElement[Any], ...]:
    """The ExportRow fields; without `meta`, None stands in and its JSON is never decoded."""
    return (
        traces.c.id,
        traces.c.trace_version,
        traces.c.prompt,
        traces.c.final_answer,
        traces.c.steps_json,
        traces.c.meta if meta else sa.null(),
        traces.c.create_time_us,
    )


_ROW_KEYS = (
    "id",
    "create_time_us",
    "trace_version",
    "prompt",
    "final_answer",
    "steps_json",
    "meta_json",
    "source",
    "category",
    "step_count",
    "char_count",
    "request_id",
)


def _row(trace_id: str, trace: NewTrace, now: int, request_id: str | None) -> tuple[Any, ...]:
    """One traces row, in _ROW_KEYS order."""
    return (
        trace_id,
        now,
        trace.trace_version,
        trace.prompt,
        trace.final_answer,
        orjson.dumps(trace.steps).decode(),
        trace.meta_json.decode(),
        trace.source,
        trace.category,
        len(trace.steps),
        trace.char_count,
        request_id,
    )


def _insert_statement(dialect: str) -> sa.Insert:
    # meta is bound as JSON text serialised once by orjson (SQLite stores JSON
    # as text anyway; PostgreSQL casts it).
    meta = sa.bindparam("meta_json", type_=sa.Text)
    value = sa.cast(meta, JsonType) if dialect == "postgresql" else meta
    return traces.insert().inline().values(meta=value)


def _new_ids(count: int) -> list[str]:
    # uuid4 strings from one urandom call: uuid.uuid4() per row costs as much
    # as the row's INSERT.
    raw = os.urandom(16 * count)
    ids = []
    for n in range(count):
        h = raw[16 * n : 16 * n + 16].hex()
        ids.append(
            f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"
        )
    return ids


_VARIANT = "89ab"


def new_rows(batch: Sequence[NewTrace]) -> list[tuple[Any, ...]]:
    """traces rows for a batch, with new ids, for TraceStore.insert_rows. Plain
    tuples, so that another process can make them (the import's batch parser)."""
    now = now_us()
    return [
        _row(trace_id, t, now, None)
        for trace_id, t in zip(_new_ids(len(batch)), batch, strict=True)
    ]


class TraceStore:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._insert = FastInsert(engine, _insert_statement(engine.dialect.name), _ROW_KEYS)

    def insert_rows(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """Store new_rows() in one transaction: all of them or, on any error, none."""
        with self._engine.begin() as conn:
            self._insert(conn, rows)
        return len(rows)

    def create(self, trace: NewTrace, request_id: str | None) -> tuple[StoredTrace, bool]:
        """Store one trace; a known request_id returns the trace stored with it. The
        flag says whether this call stored it."""
        if request_id:
            existing = self._get_where(traces.c.request_id == request_id)
            if existing:
                return existing, False
        trace_id = _new_ids(1)[0]
        try:
            with self._engine.begin() as conn:
                self._insert(conn, [_row(trace_id, trace, now_us(), request_id or None)])
        except sa.exc.IntegrityError:
            # A concurrent retry with the same request_id won the race.
            existing = self._get_where(traces.c.request_id == request_id) if request_id else None
            if existing is None:
                raise
            return existing, False
        found = self._get_where(traces.c.id == trace_id)
        assert found is not None
        return found, True

    def _get_where(
        self, clause: sa.ColumnElement[bool], *, full: bool = True
    ) -> StoredTrace | None:
        with self._engine.connect() as conn:
            columns = _COLUMNS if full else _BASIC_COLUMNS
            row = conn.execute(sa.select(*columns).where(clause)).first()
        return StoredTrace(*row) if row else None

    def get(self, trace_id: str, *, full: bool = True) -> StoredTrace | None:
        """`full=False`: no prompt, answer or steps (they read as empty)."""
        return self._get_where(traces.c.id == trace_id, full=full)

    def export_rows(self, trace_ids: Sequence[str], *, meta: bool) -> dict[str, ExportRow]:
        """Export rows of these traces by id (the ones that exist), in one query."""
        query = sa.select(*export_columns(meta)).where(traces.c.id.in_(set(trace_ids)))
        with self._engine.connect() as conn:
            return {row[0]: ExportRow._make(row) for row in conn.execute(query)}

    def matching_ids(self, conditions: Sequence[Condition], limit: int) -> list[str]:
        """Ids of the newest `limit` traces that match, newest first."""
        query = (
            sa.select(traces.c.id)
            .where(where(conditions))
            .order_by(traces.c.seq.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def missing(self, trace_ids: Sequence[str]) -> list[str]:
        """The ids (in the order given) that name no stored trace."""
        found: set[str] = set()
        unique = list(dict.fromkeys(trace_ids))
        with self._engine.connect() as conn:
            for start in range(0, len(unique), 1_000):
                chunk = unique[start : start + 1_000]
                query = sa.select(traces.c.id).where(traces.c.id.in_(chunk))
                found.update(conn.execute(query).scalars())
        return [t for t in unique if t not in found]

    def page(
        self,
        conditions: Sequence[Condition],
        limit: int,
        before_seq: int | None,
        *,
        full: bool = True,
    ) -> list[StoredTrace]:
        """Newest first; `before_seq` is the keyset cursor of the previous page."""
        query = sa.select(*(_COLUMNS if full else _BASIC_COLUMNS)).where(where(conditions))
        if before_seq is not None:
            query = query.where(traces.c.seq < before_seq)
        query = query.order_by(traces.c.seq.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [StoredTrace(*row) for row in conn.execute(query)]

    def delete(self, trace_id: str) -> bool:
        """Delete a trace no dataset uses; raise TraceInUse naming the datasets that do."""
        with self._engine.begin() as conn:
            users = (
                conn.execute(
                    sa.select(datasets.c.key)
                    .select_from(
                        dataset_items.join(datasets, datasets.c.seq == dataset_items.c.dataset_seq)
                    )
                    .join(traces, traces.c.seq == dataset_items.c.trace_seq)
                    .where(traces.c.id == trace_id)
                    .distinct()
                    .order_by(datasets.c.key)
                )
                .scalars()
                .all()
            )
            if users:
                raise TraceInUse(list(users))
            return conn.execute(traces.delete().where(traces.c.id == trace_id)).rowcount > 0
