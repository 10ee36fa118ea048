"""Selection and split inside the database (storage/dataset_selection.py), on an
in-memory SQLite; tests/test_postgres.py checks PostgreSQL gives the same."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tunixrt_server.core.filters import parse_filter
from tunixrt_server.core.selection import EVAL
from tunixrt_server.storage.datasets import DatasetSpec, DatasetStore, EmptySelection
from tunixrt_server.storage.db import create_engine, sqlite_url
from tunixrt_server.storage.schema import dataset_items, metadata, traces
from unit.stored_rows import bare_trace

Store = tuple[DatasetStore, sa.Engine]


@pytest.fixture
def store() -> Iterator[Store]:
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    rows = [("big", n) for n in range(100)] + [("small", n) for n in range(3)]
    with engine.begin() as conn:
        conn.execute(
            traces.insert(),
            [
                bare_trace(n, f"{kind} {n}", kind, {"kind": kind})
                for n, (kind, _) in enumerate(rows)
            ],
        )
    yield DatasetStore(engine), engine
    engine.dispose()


def spec(key: str, **given: object) -> DatasetSpec:
    values: dict[str, Any] = {
        "strategy": "STRATIFIED",
        "limit": 1000,
        "seed": 1,
        "stratify_by": "kind",
    } | given
    values |= {"eval_fraction": values.get("eval_fraction", 0.0), "filter": "", "provenance": {}}
    return DatasetSpec(key=key, dataset_name=key, version="v", **values)


def build(
    store: DatasetStore, engine: sa.Engine, key: str, **given: object
) -> list[tuple[str, int]]:
    built = store.build(spec(key, **given), [])
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(traces.c.prompt, dataset_items.c.split)
            .join(traces, traces.c.seq == dataset_items.c.trace_seq)
            .where(dataset_items.c.dataset_seq == built.seq)
            .order_by(dataset_items.c.position)
        )
        return [(prompt, split) for prompt, split in rows]


def test_stratified_takes_turns_and_small_strata_whole(
    store: tuple[DatasetStore, sa.Engine],
) -> None:
    picked = build(*store, "a", limit=10)
    assert Counter(p.split()[0] for p, _ in picked) == {"big": 7, "small": 3}
    assert [p.split()[0] for p, _ in picked[:6]] == ["big", "small"] * 3  # bytewise order
    assert build(*store, "b", limit=10) == picked
    assert build(*store, "c", limit=10, seed=2) != picked


def test_splits_hold_out_a_fraction_per_stratum(store: Store) -> None:
    picked = build(*store, "a", eval_fraction=0.25)
    held = Counter(p.split()[0] for p, split in picked if split == EVAL)
    assert held == {"big": 25, "small": 1}  # round(0.75) = 1
    assert build(*store, "b", eval_fraction=0.25) == picked


def test_random_is_seeded_and_latest_is_newest(store: Store) -> None:
    random = build(*store, "a", strategy="RANDOM", limit=20)
    assert random == build(*store, "b", strategy="RANDOM", limit=20)
    assert random != build(*store, "c", strategy="RANDOM", limit=20, seed=2)
    assert len(random) == 20 and len(set(random)) == 20
    latest = build(*store, "d", strategy="LATEST", limit=3)
    assert [p for p, _ in latest] == ["small 102", "small 101", "small 100"]


def test_category_strata_are_the_stored_column(store: Store) -> None:
    """STRATIFIED by category reads traces.category (covered by its index), which
    is meta.category: the same selection as any meta key with the same values."""
    assert build(*store, "a", stratify_by="category", limit=10) == build(*store, "b", limit=10)


def test_stats_read_from_the_candidates_equal_those_read_from_the_items(store: Store) -> None:
    """A build that took every candidate reads its stats from the candidates'
    index; one whose limit equals the candidates' count reads its items' traces."""
    datasets, engine = store
    with engine.begin() as conn:
        conn.execute(
            traces.update().values(
                step_count=traces.c.seq % 7,
                char_count=traces.c.seq * 3,
                source=sa.case((traces.c.seq % 2 == 0, "even"), else_="odd"),
            )
        )
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    steps = parse_filter("steps > 1")
    whole = datasets.build(spec("whole", eval_fraction=0.2), steps)
    read_items = [s for s in statements if "IN (SELECT dataset_items.trace_seq" in s]
    exact = datasets.build(spec("exact", eval_fraction=0.2, limit=whole.item_count), steps)
    assert not read_items and any("IN (SELECT dataset_items.trace_seq" in s for s in statements)
    assert whole.stats == exact.stats
    kept = [seq for seq in range(1, 104) if seq % 7 > 1]
    assert whole.stats["trace_count"] == whole.item_count == len(kept)
    assert whole.stats["source_counts"] == Counter("odd" if s % 2 else "even" for s in kept)
    assert whole.stats["avg_chars"] == 3 * sum(kept) / len(kept)
    assert whole.stats["min_steps"] == 2 and whole.stats["max_steps"] == 6


def test_a_build_hands_its_connection_back_with_foreign_keys_on(tmp_path: Path) -> None:
    engine = create_engine(sqlite_url(tmp_path), pool_size=1)
    metadata.create_all(engine)
    store = DatasetStore(engine)
    with pytest.raises(EmptySelection):  # fails inside the unchecked transaction
        build(store, engine, "empty")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()
