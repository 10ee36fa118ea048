"""PostgreSQL: two server processes on one database see the same data and pick up
each training run exactly once; builds select alike on both backends; an export
page after a build reads only its own rows."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from unit.stored_rows import bare_trace

from conftest import TRACES_JSONL, PostgresCluster, ServerProcess, start_server
from tunixrt import NotFound
from tunixrt.v1 import dataset_pb2, training_pb2
from tunixrt_server.storage.datasets import DatasetSpec, DatasetStore
from tunixrt_server.storage.db import create_engine, migrate
from tunixrt_server.storage.schema import traces

QUICK = {
    "max_steps": 6,
    "max_seq_len": 64,
    "eval_every_steps": 3,
    "eval_examples": 4,
    "checkpoint_every_steps": 3,
}


@pytest.fixture
def backend() -> str:
    return "postgresql"


def test_two_servers_one_database(
    server_factory: Callable[..., ServerProcess], postgres: PostgresCluster, tmp_path: Path
) -> None:
    url = postgres.new_database()
    shared = tmp_path / "shared-data"  # checkpoints must be reachable from both
    a = server_factory(data_dir=shared, database_url=url)
    b = server_factory(data_dir=shared, database_url=url)
    with a.client() as ca, b.client() as cb:
        assert ca.import_jsonl(TRACES_JSONL).accepted_count == 550
        assert len(list(cb.list_traces(page_size=1000))) == 550
        ds = cb.build_dataset("pg", "v1", strategy="RANDOM", seed=3, eval_fraction=0.1)
        assert ca.get_dataset(ds.name).build_id == ds.build_id
        assert [i.trace_id for i in ca.list_dataset_items(ds.name)] == [
            i.trace_id for i in cb.list_dataset_items(ds.name)
        ]
        lonely = ca.create_trace(next(cb.list_traces()))
        cb.delete_trace(lonely.name)
        with pytest.raises(NotFound):
            ca.get_trace(lonely.name)

        runs = [ca.create_training_run(ds.name, hyperparameters=QUICK) for _ in range(3)]
        for run in runs:
            events = list(cb.watch_training_run(run.name))
            assert events[-1].state_change.state == training_pb2.TRAINING_RUN_STATE_SUCCEEDED
            done = ca.get_training_run(run.name)
            assert done.metrics.step == 6
            # One claim: a single RUNNING transition and a single worker start, anywhere.
            running = [
                e
                for e in events
                if e.HasField("state_change")
                and e.state_change.state == training_pb2.TRAINING_RUN_STATE_RUNNING
            ]
            assert len(running) == 1
        started = re.findall(r"run (\S+) attempt (\d+): worker pid", a.log() + b.log())
        assert sorted(started) == sorted((r.name.split("/")[1], "1") for r in runs)
        assert cb.generate(runs[0].name, ["hi"], max_new_tokens=4).step == 6


def test_builds_select_and_split_alike_on_sqlite_and_postgresql(
    server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """Selection and split run inside the database: the same spec over the same
    traces gives the same items, order and split on both."""
    pg = server_factory()
    lite = start_server(tmp_path / "sqlite")
    try:
        with pg.client() as cp, lite.client() as cl:
            views = []
            stats: list[dataset_pb2.DatasetStats] = []
            for rt in (cp, cl):
                rt.import_jsonl(TRACES_JSONL)
                prompts = {t.name: t.prompt for t in rt.list_traces(page_size=1000)}
                view = []
                specs: list[tuple[str, dict[str, Any]]] = [
                    ("STRATIFIED", {"stratify_by": "category", "limit": 300}),
                    ("STRATIFIED", {"stratify_by": "meta.difficulty"}),
                    ("RANDOM", {"limit": 100}),
                    ("LATEST", {"limit": 50}),
                ]
                for n, (strategy, extra) in enumerate(specs):
                    ds = rt.build_dataset(
                        "x", f"v{n}", strategy=strategy, eval_fraction=0.25, seed=5, **extra
                    )
                    items = rt.get_dataset(ds.name, full=True).items
                    view.append([(prompts[f"traces/{i.trace_id}"], i.split) for i in items])
                    stats.append(ds.stats)
                views.append(view)
            assert views[0] == views[1]
            assert stats[:4] == stats[4:]  # from the candidates' index or the items alike
            assert [len(v) for v in views[0]] == [300, 550, 100, 50]
    finally:
        lite.stop()


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def test_an_export_page_after_a_build_reads_only_its_rows(postgres: PostgresCluster) -> None:
    """Planned on statistics from before the build (no items of the new dataset),
    each export page joined and sorted every item after it: 176 ms a page at
    100k items, an export quadratic in N. The build refreshes them."""
    engine = create_engine(postgres.new_database())
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(traces.insert(), [bare_trace(n, f"p{n}") for n in range(20_000)])
    store = DatasetStore(engine)
    spec = DatasetSpec("d", "d", "v1", "", 1_000_000, "RANDOM", 1, "", 0.1, {})
    built = store.build(spec, [])
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    store.export_page(built.seq, None, 1_000, 100, meta=False)
    sa.event.remove(engine, "before_cursor_execute", record)
    (statement, parameters) = statements[-1]
    with engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar_one()
    nodes = list(_plan_nodes(plan[0]["Plan"]))
    kinds = [node["Node Type"] for node in nodes]
    assert "Sort" not in kinds, kinds
    assert any(node.get("Index Name") == "pk_dataset_items" for node in nodes), kinds
    engine.dispose()
