"""Standalone training workers (`tunix-rt worker`) behind an API server that trains
nothing itself, on one PostgreSQL database and a shared data dir."""

from __future__ import annotations

import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import TRACES_JSONL, PostgresCluster, ServerProcess
from tunixrt.v1 import training_pb2

QUICK = {"max_steps": 6, "max_seq_len": 64, "eval_every_steps": 0, "checkpoint_every_steps": 3}
SUCCEEDED = training_pb2.TRAINING_RUN_STATE_SUCCEEDED
FAILED = training_pb2.TRAINING_RUN_STATE_FAILED
CANCELLED = training_pb2.TRAINING_RUN_STATE_CANCELLED
ORPHAN_AFTER_S = 30.0
HEARTBEAT_TIMEOUT_S = 30.0  # tunix_adapter/distributed.py
WORKER = [sys.executable, "-m", "tunixrt.cli", "worker"]  # training/supervisor.py


@pytest.fixture
def backend() -> str:
    return "postgresql"


class Worker:
    def __init__(self, url: str, data_dir: Path, log_path: Path, *extra: str) -> None:
        self.log_path = log_path
        self.proc = subprocess.Popen(
            [*WORKER, "--database-url", url, "--data-dir", str(data_dir), *extra],
            stdout=log_path.open("w"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "JAX_PLATFORMS": "cpu"},
        )

    def claims(self) -> list[str]:
        return re.findall(r"run (\S+) attempt \d+: worker pid", self.log_path.read_text())


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(url: str, data_dir: Path, *extra: str) -> Worker:
        started.append(Worker(url, data_dir, tmp_path / f"worker{len(started)}.log", *extra))
        return started[-1]

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.terminate()
            worker.proc.wait(60)


def test_worker_needs_a_migrated_database(postgres: PostgresCluster, tmp_path: Path) -> None:
    done = subprocess.run(
        [*WORKER, "--database-url", postgres.new_database(), "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "start an API server of this version on it first" in done.stderr


@pytest.mark.slow
def test_two_workers_train_what_the_api_server_queues(
    server_factory: Callable[..., ServerProcess],
    workers: Callable[..., Worker],
    postgres: PostgresCluster,
    tmp_path: Path,
) -> None:
    url = postgres.new_database()
    shared = tmp_path / "shared"  # checkpoints: written by workers, read by the API server
    api = server_factory(
        data_dir=shared, database_url=url, env={"TUNIXRT_MAX_CONCURRENT_RUNS": "0"}
    )
    pool = [workers(url, shared), workers(url, shared)]
    with api.client() as rt:
        rt.import_jsonl(TRACES_JSONL)
        ds = rt.build_dataset("w", "v1", strategy="RANDOM", seed=1, eval_fraction=0.1)
        runs = [rt.create_training_run(ds.name, hyperparameters=QUICK) for _ in range(4)]
        delays: list[float] = []

        def watch(name: str) -> list[training_pb2.TrainingEvent]:
            events = []
            for event in rt.watch_training_run(name):
                events.append(event)
                delays.append(time.time() - event.time.ToNanoseconds() / 1e9)
            return events

        with ThreadPoolExecutor(len(runs)) as pool_of_watchers:
            watched = list(pool_of_watchers.map(watch, [r.name for r in runs]))
        for events in watched:
            assert events[-1].state_change.state == SUCCEEDED, events[-1]
            assert [e.step for e in events if e.HasField("step_metrics")] == list(range(1, 7))
        # Live across processes (LISTEN/NOTIFY), not at the 1 s poll of the safety net.
        assert statistics.median(delays) < 0.3, sorted(delays)
        # Each run claimed once, by some worker; the API server trained none.
        claims = Counter(c for w in pool for c in w.claims())
        assert claims == Counter(r.name.split("/")[1] for r in runs)
        assert "worker pid" not in api.log()
        assert rt.generate(runs[0].name, ["hi"], max_new_tokens=4).step == 6

        # kill -9 the worker training a long run: FAILED within the heartbeat timeout,
        # then Resume finishes it on the other worker from its checkpoint.
        long = rt.create_training_run(
            ds.name, hyperparameters={**QUICK, "max_steps": 300, "checkpoint_every_steps": 2}
        )
        with rt.watch_training_run(long.name) as stream:
            saved = next(e for e in stream if e.HasField("checkpoint_saved") and e.step >= 2)
        run_id = long.name.split("/")[1]
        owner = next(w for w in pool if run_id in w.claims())
        other = next(w for w in pool if w is not owner)
        owner.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        rest = list(
            rt.watch_training_run(
                long.name, after_sequence=saved.sequence, timeout=ORPHAN_AFTER_S + 30
            )
        )
        assert rest[-1].state_change.state == FAILED, rest[-1]
        assert time.monotonic() - killed < ORPHAN_AFTER_S + 30
        assert rt.get_training_run(long.name).metrics.step < 300
        rt.resume_training_run(long.name)
        events = list(rt.watch_training_run(long.name))
        assert events[-1].state_change.state == SUCCEEDED, events[-1]
        assert run_id in other.claims()


@pytest.mark.slow  # ~2 min on 2 cores
def test_a_worker_group_trains_one_run_over_two_processes(
    server_factory: Callable[..., ServerProcess],
    workers: Callable[..., Worker],
    postgres: PostgresCluster,
    tmp_path: Path,
) -> None:
    """Two workers of one group (jax.distributed, gloo collectives), one CPU device
    each, train a run sharded fsdp=2 over both: it follows the curve of the same run
    on one process with two emulated devices."""
    url = postgres.new_database()
    shared = tmp_path / "shared"
    spec = {"max_steps": 8, "batch_size": 4, "max_seq_len": 128, "checkpoint_every_steps": 4}
    two_devices = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    alone = server_factory(data_dir=shared, database_url=url, env=two_devices)
    with alone.client() as rt:
        rt.import_jsonl(TRACES_JSONL)
        ds = rt.build_dataset("g", "v1", strategy="RANDOM", seed=1, eval_fraction=0.1)
        reference = rt.create_training_run(ds.name, hyperparameters=spec, mesh={"fsdp": 2})
        expected = [e for e in rt.watch_training_run(reference.name)]
    alone.stop()

    api = server_factory(
        data_dir=shared, database_url=url, env={"TUNIXRT_MAX_CONCURRENT_RUNS": "0"}
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        coordinator = f"127.0.0.1:{probe.getsockname()[1]}"
    group = ("--num-processes", "2", "--coordinator-address", coordinator)
    leader = workers(url, shared, *group, "--process-id", "0")
    follower = workers(url, shared, *group, "--process-id", "1")
    with api.client() as rt:
        run = rt.create_training_run(ds.name, hyperparameters=spec, mesh={"fsdp": 2})
        got = list(rt.watch_training_run(run.name))
        assert got[-1].state_change.state == SUCCEEDED, (got[-1], leader.log_path.read_text())
        losses = [
            [e.step_metrics.loss for e in events if e.HasField("step_metrics")]
            for events in (expected, got)
        ]
        assert len(losses[1]) == spec["max_steps"]
        assert losses[1][0] == pytest.approx(losses[0][0], rel=1e-5)
        assert losses[1] == pytest.approx(losses[0], rel=0.02)
        follower_log = (shared / "follower-1.log").read_text()
        assert f"run {run.name.split('/')[1]} attempt 1: process 1 of 2" in follower_log
        # Its checkpoint, written by both processes, serves Generate on the API server.
        assert rt.generate(run.name, ["hi"], max_new_tokens=4).step == spec["max_steps"]

        # Cancel: process 0 decides, both processes stop at the same step.
        cancelled = rt.create_training_run(ds.name, hyperparameters={**spec, "max_steps": 400})
        with rt.watch_training_run(cancelled.name) as stream:
            next(e for e in stream if e.HasField("step_metrics"))
        rt.cancel_training_run(cancelled.name)
        ended = list(rt.watch_training_run(cancelled.name))[-1]
        assert ended.state_change.state == CANCELLED, ended

        # A host lost mid-run (its worker and training process killed): process 0's
        # run fails within the group's heartbeat timeout, and resumes once whole.
        long = rt.create_training_run(
            ds.name, hyperparameters={**spec, "max_steps": 40, "checkpoint_every_steps": 2}
        )
        with rt.watch_training_run(long.name) as stream:
            saved = next(e for e in stream if e.HasField("checkpoint_saved"))
        training = subprocess.run(
            ["pgrep", "-P", str(follower.proc.pid)], capture_output=True, text=True
        ).stdout.split()
        for pid in [follower.proc.pid, *map(int, training)]:
            os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        rest = list(rt.watch_training_run(long.name, after_sequence=saved.sequence))
        assert rest[-1].state_change.state == FAILED, rest[-1]
        assert time.monotonic() - killed < HEARTBEAT_TIMEOUT_S + 30
        workers(url, shared, *group, "--process-id", "1")
        rt.resume_training_run(long.name)
        events = list(rt.watch_training_run(long.name))
        assert events[-1].state_change.state == SUCCEEDED, events[-1]
