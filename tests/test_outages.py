"""Reliability round 3: an export is whole or fails, and a database that cannot be
reached is UNAVAILABLE (retryable), never INTERNAL; the server serves again once
the database is back, without a restart."""

from __future__ import annotations

import contextlib
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from test_reliability import integrity_problems

from conftest import PostgresCluster, ServerProcess
from tunixrt import TunixRtError
from tunixrt.generators import generate_jsonl
from tunixrt.v1 import training_pb2
from tunixrt_server.training.reporter import OUTAGE_LIMIT_S

# Enough rows that a delete after the first chunk lands mid-export: the server reads
# at most two pages (4,096 rows each) ahead of what the client has taken.
EXPORT_TRACES = 12_000
# The worker holds its events through this long an outage (its limit is 60 s), and the
# run is long enough to be training on both sides of it (~0.1 s a step on 2 cores).
OUTAGE_S = 20.0
OUTAGE_RUN_STEPS = 200
SUCCEEDED = training_pb2.TRAINING_RUN_STATE_SUCCEEDED
FAILED = training_pb2.TRAINING_RUN_STATE_FAILED


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


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_run_trains_through_a_database_outage_and_loses_no_event(
    server_factory: Callable[..., ServerProcess], own_postgres: PostgresCluster, backend: str
) -> None:
    """PostgreSQL stopped for OUTAGE_S while a run trains and a client watches it: the
    worker keeps training, holds its events, and writes them in order once the
    database is back; the run ends SUCCEEDED with an event log without gaps. The
    watcher's stream fails retryably (or waits), and resuming it from the last
    sequence it saw gives the rest, without gaps or repeats."""
    server = server_factory(database_url=own_postgres.new_database())
    with server.client(timeout=60) as rt:
        rt.import_jsonl(generate_jsonl("arithmetic", 200, seed=4))
        ds = rt.build_dataset("outage", "v1", eval_fraction=0.1, seed=4)
        hp = {"max_steps": OUTAGE_RUN_STEPS, "eval_every_steps": -1, "max_seq_len": 128}
        run = rt.create_training_run(ds.name, hyperparameters=hp)
        watched: list[training_pb2.TrainingEvent] = []
        broke: list[TunixRtError] = []
        started = threading.Event()

        def watch() -> None:
            try:
                for event in rt.watch_training_run(run.name):
                    watched.append(event)
                    if event.WhichOneof("event") == "step_metrics" and event.step >= 3:
                        started.set()
            except TunixRtError as exc:
                broke.append(exc)
            started.set()

        watcher = threading.Thread(target=watch)
        watcher.start()
        assert started.wait(120)
        own_postgres.stop("fast")
        time.sleep(OUTAGE_S)
        own_postgres.start()
        watcher.join(timeout=300)
        if broke:
            assert broke[0].code == grpc.StatusCode.UNAVAILABLE, broke[0]
            watched += rt.watch_training_run(run.name, after_sequence=watched[-1].sequence)
        events = list(rt.watch_training_run(run.name))
        done = rt.get_training_run(run.name)
    assert done.state == SUCCEEDED, done.state_message
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert [e.sequence for e in watched] == [e.sequence for e in events]
    steps = [e.step for e in events if e.WhichOneof("event") == "step_metrics"]
    assert steps == list(range(1, OUTAGE_RUN_STEPS + 1))
    log = server.data_dir / "runs" / run.name.removeprefix("trainingRuns/") / "worker.log"
    assert "the database is back after" in log.read_text()


CHAOS_TRACES = 20_000


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize(
    "operation",
    [
        "import",
        pytest.param("build", marks=pytest.mark.slow),
        pytest.param("export", marks=pytest.mark.slow),
    ],
)
def test_a_database_stop_during_an_operation_is_retryable_and_leaves_nothing_half_written(
    server_factory: Callable[..., ServerProcess],
    own_postgres: PostgresCluster,
    backend: str,
    operation: str,
) -> None:
    """PostgreSQL stopped for 3 s at some point of an ImportTraces, a BuildDataset or
    an ExportDataset (wherever it happens to be): the call succeeds whole, or fails
    with UNAVAILABLE; whole import batches only; dataset items match their stats; the
    same server serves again."""
    url = own_postgres.new_database()
    server = server_factory(database_url=url)
    with server.client(timeout=30) as rt:
        rt.import_jsonl(generate_jsonl("arithmetic", CHAOS_TRACES, seed=5))
        base = rt.build_dataset("base", "v1", eval_fraction=0.1, seed=5)
        outcome: list[object] = []

        def run() -> None:
            try:
                if operation == "import":
                    more = generate_jsonl("high_card_duel", CHAOS_TRACES, seed=6)
                    outcome.append(rt.import_jsonl(more).accepted_count)
                elif operation == "build":
                    outcome.append(rt.build_dataset("during", "v1", eval_fraction=0.2, seed=6))
                else:
                    with rt.export_chunks(base.name, rows_per_chunk=64) as stream:
                        rows = [m.summary.row_count for m in stream if m.HasField("summary")]
                    outcome.append(rows)
            except TunixRtError as exc:
                outcome.append(exc)

        call = threading.Thread(target=run)
        call.start()
        time.sleep(0.2)
        own_postgres.stop("fast")
        time.sleep(3.0)
        own_postgres.start()
        call.join(timeout=120)
        assert not call.is_alive()
        (result,) = outcome
        if isinstance(result, TunixRtError):
            assert result.code == grpc.StatusCode.UNAVAILABLE, result
        elif operation == "import":
            assert result == CHAOS_TRACES
        elif operation == "export":
            assert result == [base.stats.trace_count]
        # Served again, and whole.
        traces = server.count("traces")
        assert (traces - CHAOS_TRACES) % 1_000 == 0  # whole import batches only
        for ds in rt.list_datasets():
            full = rt.get_dataset(ds.name)
            assert full.stats.trace_count == len(
                list(rt.list_dataset_items(ds.name, page_size=1000))
            )
    assert integrity_problems(url) == []


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param("build", marks=pytest.mark.slow),
        pytest.param("export", marks=pytest.mark.slow),
    ],
)
def test_kill_9_during_a_build_or_an_export_leaves_nothing_half_written(
    server_factory: Callable[..., ServerProcess], tmp_path: Path, operation: str
) -> None:
    """The server killed with SIGKILL at a random point of a BuildDataset or an
    ExportDataset: the client gets an error (never a short OK), a restarted server
    on the same database has either the whole dataset or none, and serves on."""
    data = tmp_path / "data"
    server = server_factory(data_dir=data)
    with server.client(timeout=60) as rt:
        rt.import_jsonl(generate_jsonl("arithmetic", CHAOS_TRACES, seed=8))
        base = rt.build_dataset("base", "v1", eval_fraction=0.1, seed=8)
        outcome: list[object] = []

        def run() -> None:
            try:
                if operation == "build":
                    outcome.append(rt.build_dataset("during", "v1", eval_fraction=0.2, seed=9))
                else:
                    stream = rt.export_chunks(base.name, rows_per_chunk=64, timeout=20)
                    with stream:
                        summaries = [m.summary for m in stream if m.HasField("summary")]
                    outcome.append(summaries)
            except Exception as exc:  # whatever the client sees of a dead server
                outcome.append(exc)

        call = threading.Thread(target=run)
        call.start()
        time.sleep(random.Random(f"{operation}-kill").uniform(0.0, 0.3))
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        call.join(timeout=90)
        assert not call.is_alive()
        (result,) = outcome
        if isinstance(result, TunixRtError | grpc.RpcError):
            code = result.code if isinstance(result, TunixRtError) else result.code()
            retryable = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            assert code in retryable, result
        elif operation == "export":  # it finished before the kill: then whole
            assert [s.row_count for s in result] == [base.stats.trace_count]  # type: ignore[attr-defined]
        else:
            assert not isinstance(result, Exception), repr(result)
    again = server_factory(data_dir=data, database_url=server.database_url)
    with again.client(timeout=60) as rt:
        for ds in rt.list_datasets():
            assert ds.stats.trace_count == len(list(rt.list_dataset_items(ds.name, page_size=1000)))
        assert rt.import_jsonl(generate_jsonl("arithmetic", 10, seed=10)).accepted_count == 10
    assert integrity_problems(again.database_url) == []


@pytest.mark.slow  # the outage outlasts the worker's 60 s limit
@pytest.mark.parametrize("backend", ["postgresql"])
def test_an_outage_past_the_limit_fails_the_run_resumably(
    server_factory: Callable[..., ServerProcess], own_postgres: PostgresCluster, backend: str
) -> None:
    """PostgreSQL down longer than the worker holds its events: the run stops and,
    once the database is back, is FAILED saying why; Resume finishes it from its
    checkpoint."""
    server = server_factory(database_url=own_postgres.new_database())
    with server.client(timeout=60) as rt:
        rt.import_jsonl(generate_jsonl("arithmetic", 200, seed=11))
        ds = rt.build_dataset("long", "v1", eval_fraction=0.1, seed=11)
        hp = {"max_steps": 100_000, "eval_every_steps": -1, "max_seq_len": 128}
        hp |= {"checkpoint_every_steps": 20}
        run = rt.create_training_run(ds.name, hyperparameters=hp)
        for event in rt.watch_training_run(run.name):
            if event.WhichOneof("event") == "checkpoint_saved":
                break
        own_postgres.stop("fast")
        time.sleep(OUTAGE_LIMIT_S + 15)
        own_postgres.start()
        deadline = time.monotonic() + 120
        while (failed := rt.get_training_run(run.name)).state != FAILED:
            assert time.monotonic() < deadline, failed.state_message
            time.sleep(1)
        assert "database" in failed.state_message and "ResumeTrainingRun" in failed.state_message
        kept = failed.checkpoint_step
        assert kept >= 20
        seen = list(rt.watch_training_run(run.name))[-1].sequence  # an ended run's history
        rt.resume_training_run(run.name)
        for event in rt.watch_training_run(run.name, after_sequence=seen):
            if event.WhichOneof("event") == "step_metrics":
                assert event.step == kept + 1  # from the checkpoint
                break
        rt.cancel_training_run(run.name)
        list(rt.watch_training_run(run.name))
