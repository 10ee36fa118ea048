"""Invariants no black-box test would notice breaking."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tunixrt.v1 import training_pb2
from tunixrt_server.core.run_state import RunState
from tunixrt_server.storage import schema
from tunixrt_server.storage.db import create_engine, migrate


def test_run_state_matches_the_proto_enum() -> None:
    proto = {
        name.removeprefix("TRAINING_RUN_STATE_"): number
        for name, number in training_pb2.TrainingRunState.items()
        if number
    }
    assert {s.name: s.value for s in RunState} == proto


def schema_drift(metadata: sa.MetaData, tmp_path: Path) -> list[object]:
    engine = create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    try:
        migrate(engine)
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), metadata))
    finally:
        engine.dispose()


def test_the_schema_is_what_the_migrations_build(tmp_path: Path) -> None:
    assert schema_drift(schema.metadata, tmp_path) == []


def test_a_column_without_a_migration_is_caught(tmp_path: Path) -> None:
    """The check above can fail: a column added to schema.py alone shows up."""
    changed = sa.MetaData()
    for table in schema.metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["traces"].append_column(sa.Column("surprise", sa.Integer, nullable=True))
    drift = schema_drift(changed, tmp_path)
    assert any("surprise" in str(item) for item in drift), drift


SERVE_WITHOUT_JAX = r"""
import asyncio, sys, tempfile
from pathlib import Path
from tunixrt_server import app
from tunixrt_server.config import Settings
from tunixrt import Client, trace_from_dict

async def main():
    data = Path(tempfile.mkdtemp())
    settings = Settings(address="127.0.0.1:0", data_dir=data, max_concurrent_runs=0)
    running = await app.start(settings)
    def calls():
        with Client(f"127.0.0.1:{running.port}") as rt:
            rt.create_trace(trace_from_dict({"prompt": "p", "final_answer": "a"}))
            rt.build_dataset("nojax", "v1")
            list(rt.export_chunks("nojax-v1", format="tunix_sft"))
            rt.get_training_manifest("nojax-v1")
            run = rt.create_training_run("nojax-v1")
            rt.cancel_training_run(run.name)
            list(rt.watch_training_run(run.name))
    await asyncio.to_thread(calls)
    await running.server.stop(None)
    await running.services.supervisor.stop()
    heavy = ("jax", "jaxlib", "tunix", "flax", "optax", "orbax", "aiohttp")
    loaded = [m for m in heavy if m in sys.modules]
    print(",".join(loaded) or "none")

asyncio.run(main())
"""


def test_serving_never_loads_jax() -> None:
    """JAX and Tunix load in worker processes only: the server stays light and a
    bad compile can never take it down. The web port's aiohttp loads only when
    that port is on (~0.35 s of every start otherwise)."""
    out = subprocess.run(
        [sys.executable, "-c", SERVE_WITHOUT_JAX], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "none"
