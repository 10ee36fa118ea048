"""Faults and load, against SQLite and PostgreSQL: kill -9 mid-import and mid-training,
then an integrity check; 50 concurrent clients mixing import, list, export and watch."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa

from conftest import ServerProcess
from tunixrt import Client, TunixRtError
from tunixrt.generators import generate_jsonl
from tunixrt.v1 import training_pb2

# 10 s in the suite (~900 calls per store); the README's figures are of 30 s.
LOAD_SECONDS = float(os.environ.get("TUNIXRT_LOAD_SECONDS", "10"))
LOAD_CLIENTS = 50
FIGURES = Path(os.environ.get("TUNIXRT_FIGURES", "")) if os.environ.get("TUNIXRT_FIGURES") else None


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def integrity_problems(url: str) -> list[str]:
    """Referential and log invariants, in SQL both stores speak; plus SQLite's own check."""
    checks = {
        "dataset item without trace": "SELECT COUNT(*) FROM dataset_items i "
        "LEFT JOIN traces t ON t.seq = i.trace_seq WHERE t.seq IS NULL",
        "dataset item without dataset": "SELECT COUNT(*) FROM dataset_items i "
        "LEFT JOIN datasets d ON d.seq = i.dataset_seq WHERE d.seq IS NULL",
        "event without run": "SELECT COUNT(*) FROM training_events e "
        "LEFT JOIN training_runs r ON r.seq = e.run_seq WHERE r.seq IS NULL",
        "run whose event log has gaps": "SELECT COUNT(*) FROM training_runs r WHERE "
        "r.last_sequence != (SELECT COUNT(*) FROM training_events e WHERE e.run_seq = r.seq)",
    }
    engine = sa.create_engine(url)
    problems = []
    try:
        with engine.connect() as conn:
            for label, query in checks.items():
                if count := conn.execute(sa.text(query)).scalar_one():
                    problems.append(f"{count} x {label}")
            if url.startswith("sqlite"):
                if (ok := conn.execute(sa.text("PRAGMA integrity_check")).scalar_one()) != "ok":
                    problems.append(f"integrity_check: {ok}")
                if conn.execute(sa.text("PRAGMA foreign_key_check")).first():
                    problems.append("foreign_key_check failed")
    finally:
        engine.dispose()
    return problems


def test_kill_9_mid_import_leaves_whole_batches_only(
    server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = server_factory(data_dir=data)
    errors: list[BaseException] = []

    def push() -> None:
        with server.client() as client:
            try:
                client.import_jsonl(generate_jsonl("arithmetic", 300_000, seed=1), batch_lines=1000)
            except TunixRtError as exc:
                errors.append(exc)

    pusher = threading.Thread(target=push)
    pusher.start()
    deadline = time.monotonic() + 60
    while server.count("traces") < 3000 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    pusher.join(60)
    assert errors, "the import was still running when the server died"

    again = server_factory(data_dir=data, database_url=server.database_url)
    stored = again.count("traces")
    assert stored >= 3000 and stored % 1000 == 0, f"{stored} traces: a partial batch is visible"
    assert integrity_problems(again.database_url) == []
    with again.client() as client:  # and it serves on
        assert client.import_jsonl(generate_jsonl("arithmetic", 10, seed=2)).accepted_count == 10


def test_the_import_parser_process_may_die_and_dies_with_its_server(
    server_factory: Callable[..., ServerProcess],
) -> None:
    """ImportTraces parses a batch that overlaps a write in a helper process. Killed,
    the import goes on (that batch in a thread, the next in a new process), and it
    does not outlive a server killed by SIGKILL."""
    server = server_factory()

    def parsers() -> list[psutil.Process]:
        found = []
        for child in psutil.Process(server.proc.pid).children():
            with contextlib.suppress(psutil.Error):  # gone, or a zombie not yet reaped
                if "spawn_main" in " ".join(child.cmdline()):
                    found.append(child)
        return found

    with server.client() as client:
        batches = generate_jsonl("arithmetic", 40, seed=1)
        assert client.import_jsonl(batches, batch_lines=10).accepted_count == 40
        (first,) = parsers()
        first.kill()
        psutil.wait_procs([first], timeout=30)
        # The server learns of the death on its own thread: import until it has.
        deadline = time.monotonic() + 60
        for seed in itertools.count(2):
            batches = generate_jsonl("arithmetic", 40, seed=seed)
            assert client.import_jsonl(batches, batch_lines=10).accepted_count == 40
            if (started := parsers()) or time.monotonic() > deadline:
                break
        (second,) = started
        assert second.pid != first.pid
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    _, alive = psutil.wait_procs([second], timeout=30)
    assert not alive


def test_kill_9_mid_training_leaves_no_run_running(
    server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = server_factory(data_dir=data)
    with server.client() as client:
        client.import_jsonl(generate_jsonl("arithmetic", 200, seed=3))
        client.build_dataset("kill", "v1", eval_fraction=0.1)
        run = client.create_training_run("kill-v1", hyperparameters={"eval_every_steps": -1})
        for event in client.watch_training_run(run.name):
            if event.HasField("step_metrics") and event.step >= 2:
                break
    workers = psutil.Process(server.proc.pid).children()
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    psutil.wait_procs(workers, timeout=60)

    again = server_factory(data_dir=data, database_url=server.database_url)
    with again.client() as client:
        deadline = time.monotonic() + 45  # worker's own FAILED, or the orphan sweep
        while (state := client.get_training_run(run.name).state) in (
            training_pb2.TRAINING_RUN_STATE_RUNNING,
            training_pb2.TRAINING_RUN_STATE_QUEUED,
        ) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert state == training_pb2.TRAINING_RUN_STATE_FAILED
        assert "interrupted" in client.get_training_run(run.name).state_message
        assert not list(client.list_training_runs(state="RUNNING"))
    assert integrity_problems(again.database_url) == []


def test_fifty_clients_mixing_import_list_export_watch(
    server_factory: Callable[..., ServerProcess], backend: str, tmp_path: Path
) -> None:
    server = server_factory(env={"TUNIXRT_MAX_CONCURRENT_RUNS": "0"})
    with server.client() as client:
        client.import_jsonl(generate_jsonl("high_card_duel", 2000, seed=4))
        client.build_dataset("load", "v1", limit=500, eval_fraction=0.1)
        run = client.create_training_run("load-v1")
        client.cancel_training_run(run.name)  # a finished run with a short event log

    latencies: dict[str, list[float]] = defaultdict(list)
    failures: list[str] = []
    stop_at = time.monotonic() + LOAD_SECONDS

    def worker(slot: int) -> None:
        ops: dict[str, Callable[[Client], object]] = {
            "import": lambda c: c.import_jsonl(
                generate_jsonl("arithmetic", 50, seed=1000 + slot), batch_lines=50
            ),
            "list": lambda c: next(c.list_traces('source = "arithmetic"', page_size=100), None),
            "export": lambda c: c.export_to_file("load-v1", tmp_path / f"e{slot}.jsonl"),
            "watch": lambda c: list(c.watch_training_run(run.name)),
        }
        names = list(ops)
        n = slot
        with Client(server.address, timeout=60) as c:
            while time.monotonic() < stop_at:
                name = names[n % len(names)]
                n += 1
                started = time.perf_counter()
                try:
                    ops[name](c)
                except Exception as exc:
                    failures.append(f"{name}: {exc!r}")
                    continue
                latencies[name].append(time.perf_counter() - started)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(LOAD_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(LOAD_SECONDS + 120)
    assert failures == [], failures[:5]

    figures = {}
    for name, values in sorted(latencies.items()):
        values.sort()
        figures[name] = {
            "calls": len(values),
            "p50_ms": round(statistics.median(values) * 1000, 1),
            "p99_ms": round(values[min(len(values) - 1, int(len(values) * 0.99))] * 1000, 1),
        }
    print(f"\n{backend}: {LOAD_CLIENTS} clients x {LOAD_SECONDS:.0f}s: {json.dumps(figures)}")
    if FIGURES:
        FIGURES.mkdir(parents=True, exist_ok=True)
        (FIGURES / f"load-{backend}.json").write_text(json.dumps(figures, indent=2))
    assert all(f["calls"] > 0 for f in figures.values()) and len(figures) == 4
    assert integrity_problems(server.database_url) == []
