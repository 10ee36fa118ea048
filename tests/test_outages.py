"""Reliability round 3: an export is whole or fails, and a database that cannot be
reached is UNAVAILABLE (retryable), never INTERNAL; the server serves again once
the database is back, without a restart."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from conftest import PostgresCluster, ServerProcess
from tunixrt import TunixRtError
from tunixrt.generators import generate_jsonl

EXPORT_TRACES = 40_000


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_a_delete_during_an_export_fails_the_export_never_shortens_it(
    server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = server_factory()
    with server.client() as rt:
        rt.import_jsonl(generate_jsonl("arithmetic", EXPORT_TRACES, seed=1))
        ds = rt.build_dataset("big", "v1", eval_fraction=0.1, seed=1)
        expected = ds.stats.train_count
        # A whole export first: the summary names the split's row count.
        summary = rt.export_to_file(ds.name, tmp_path / "train.jsonl", split="TRAIN")
        assert summary.row_count == summary.expected_row_count == expected
        assert len((tmp_path / "train.jsonl").read_bytes().splitlines()) == expected

        rows = 0
        with rt.export_chunks(ds.name, split="TRAIN", rows_per_chunk=16) as stream:
            messages = iter(stream)
            rows += next(messages).chunk.row_count  # the export is under way
            rt.delete_dataset(ds.name)  # succeeds at once
            with pytest.raises(TunixRtError) as failed:
                for message in messages:
                    assert not message.HasField("summary"), "ended OK with fewer rows"
                    rows += message.chunk.row_count
        assert failed.value.code == grpc.StatusCode.NOT_FOUND, failed.value
        assert failed.value.reason == "DATASET_DELETED_DURING_EXPORT"
        assert rows < expected and f"of {expected:,} rows" in failed.value.message
        # A resumed export of the deleted dataset is NOT_FOUND as well.
        with pytest.raises(TunixRtError) as resumed:
            list(rt.export_chunks(ds.name, split="TRAIN", start_row=rows))
        assert resumed.value.code == grpc.StatusCode.NOT_FOUND


@pytest.fixture
def own_postgres() -> Iterator[PostgresCluster]:
    """A cluster of this test's own, so stopping it leaves the session's alone."""
    root = Path(tempfile.mkdtemp(prefix="tunixrt-pg-outage-"))
    try:
        cluster = PostgresCluster(root)
    except Exception as exc:  # the same skip as the session's cluster
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    yield cluster
    with contextlib.suppress(subprocess.CalledProcessError):  # the test may have stopped it
        cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_stopped_database_is_unavailable_then_served_again(
    server_factory: Callable[..., ServerProcess], own_postgres: PostgresCluster, backend: str
) -> None:
    server = server_factory(database_url=own_postgres.new_database())
    # A short timeout: the SDK retries reads on UNAVAILABLE for as long as it lasts.
    with server.client(timeout=2) as rt, server.client(timeout=60) as patient:
        rt.import_jsonl(generate_jsonl("arithmetic", 50, seed=2))
        own_postgres.stop("fast")  # a clean stop: what was committed stays
        calls: dict[str, Callable[[], object]] = {
            "ListTraces": lambda: list(rt.list_traces(page_size=10)),
            "ImportTraces": lambda: rt.import_jsonl(generate_jsonl("arithmetic", 5, seed=3)),
            "GetDataset": lambda: rt.get_dataset("datasets/none-v1"),
            "BuildDataset": lambda: rt.build_dataset("during", "v1"),
        }
        for name, call in calls.items():
            with pytest.raises(TunixRtError) as down:
                call()
            assert down.value.code == grpc.StatusCode.UNAVAILABLE, (name, down.value)
            assert down.value.reason == "DATABASE_UNAVAILABLE", name
            assert f"127.0.0.1:{own_postgres.port}" in down.value.message, down.value.message

        # The SDK rides out an outage: a read waits for the database to come back.
        def start_later() -> None:
            time.sleep(3.0)
            own_postgres.start()

        restart = threading.Thread(target=start_later)
        restart.start()
        try:
            assert len(list(patient.list_traces(page_size=100))) == 50
        finally:
            restart.join()
        # Served again by the same server process: the pool reconnects.
        assert rt.import_jsonl(generate_jsonl("arithmetic", 5, seed=3)).accepted_count == 5
    assert "INTERNAL" not in server.log()
    assert server.proc.poll() is None


def test_an_unreachable_database_error_is_recognised_and_a_locked_one_is_not() -> None:
    """database_unreachable's rules, on the drivers' own exceptions."""
    import sqlite3

    import sqlalchemy as sa

    from tunixrt_server.storage.db import database_unreachable

    cantopen = sqlite3.OperationalError("unable to open database file")
    cantopen.sqlite_errorcode = 14
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorcode = 5
    assert database_unreachable(sa.exc.OperationalError("SELECT 1", {}, cantopen))
    assert not database_unreachable(sa.exc.OperationalError("SELECT 1", {}, locked))
    assert not database_unreachable(ValueError("no"))
