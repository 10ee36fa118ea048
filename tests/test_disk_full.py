"""A disk that fills up: writes answer RESOURCE_EXHAUSTED (DISK_FULL), reads go on,
nothing is half-written, and no run is left RUNNING.

Each test mounts a small tmpfs (root only; skipped where mounting is not
allowed) and puts the database, or the checkpoints, on it.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from test_reliability import integrity_problems

from conftest import PostgresCluster, ServerProcess
from tunixrt import Client, ResourceExhausted
from tunixrt.generators import generate_jsonl
from tunixrt.v1 import training_pb2

BATCH = 1_000


def _mount(path: Path, size_mb: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
            check=True,
            capture_output=True,
        )
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        stderr = getattr(exc, "stderr", b"") or b""
        pytest.skip(f"cannot mount a tmpfs here: {exc} {stderr.decode(errors='replace')}")


@pytest.fixture
def small_disk() -> Iterator[Callable[[int], Path]]:
    # Not under pytest's tmp dir: the postgres user must reach a cluster on it.
    root = Path(tempfile.mkdtemp(prefix="tunixrt-disk-"))
    root.chmod(0o755)
    mounted: list[Path] = []

    def make(size_mb: int) -> Path:
        path = root / f"disk{len(mounted)}"
        _mount(path, size_mb)
        mounted.append(path)
        return path

    yield make
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


def fill(disk: Path) -> Path:
    """Write a junk file until the disk is full; return it (delete it to free space)."""
    junk = disk / "junk"
    block = 1 << 20
    try:
        with junk.open("ab") as out:
            while block:
                try:
                    out.write(b"\0" * block)
                    out.flush()
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    block //= 4  # the last pages too
    except OSError as exc:  # the disk was already full
        assert exc.errno == errno.ENOSPC
    return junk


def import_until_full(client: Client) -> tuple[int, ResourceExhausted]:
    """One acknowledged batch per call until the server says the disk is full."""
    acknowledged = 0
    for call in range(10_000):
        try:
            client.import_jsonl(generate_jsonl("high_card_duel", BATCH, seed=call))
        except ResourceExhausted as exc:
            return acknowledged, exc
        acknowledged += BATCH
    raise AssertionError("the disk never filled")


def check_full_disk_answers(server: ServerProcess, client: Client, disk: Path) -> None:
    ballast = disk / "ballast"  # deleted at the end to give the server room again
    ballast.write_bytes(b"\0" * (3 << 20))
    acknowledged, refused = import_until_full(client)
    assert refused.reason == "DISK_FULL" and "disk is full" in str(refused)
    assert server.count("traces") == acknowledged > 0  # every acknowledged batch, no partial one
    assert sum(1 for _ in client.list_traces(page_size=1000)) == acknowledged  # reads go on

    # Builds go through while preallocated pages last (SQLite reuses its WAL), then
    # one is refused; each is whole or absent, never half-written.
    junk = fill(disk)
    built = 0
    for version in range(1, 1_000):
        try:
            client.build_dataset("full", f"v{version}", eval_fraction=0.1)
        except ResourceExhausted as exc:
            assert exc.reason == "DISK_FULL"
            break
        built += 1
    else:
        raise AssertionError("no build was refused on a full disk")
    assert server.count("datasets") == built
    assert server.count("dataset_items") == built * acknowledged
    assert "disk is full" in server.log()
    junk.unlink(missing_ok=True)
    ballast.unlink()  # with room again, the refused build goes through
    assert client.build_dataset("full", f"v{version}").stats.trace_count == acknowledged
    assert integrity_problems(server.database_url) == []


def test_sqlite_on_a_full_disk(
    server_factory: Callable[..., ServerProcess], small_disk: Callable[[int], Path]
) -> None:
    disk = small_disk(12)
    server = server_factory(data_dir=disk / "data")
    with server.client() as client:
        check_full_disk_answers(server, client, disk)


def test_postgresql_on_a_full_disk(
    server_factory: Callable[..., ServerProcess],
    small_disk: Callable[[int], Path],
    tmp_path: Path,
) -> None:
    disk = small_disk(96)
    try:
        cluster = PostgresCluster(disk)
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        server = server_factory(data_dir=tmp_path / "data", database_url=cluster.new_database())
        with server.client() as client:
            check_full_disk_answers(server, client, disk)
        server.stop()
    finally:
        cluster.stop()


def test_training_run_on_a_full_disk_fails_and_is_not_left_running(
    server_factory: Callable[..., ServerProcess], small_disk: Callable[[int], Path]
) -> None:
    server = server_factory(data_dir=small_disk(64) / "data")
    with server.client() as client:
        client.import_jsonl(generate_jsonl("arithmetic", 200, seed=3))
        client.build_dataset("disk", "v1", eval_fraction=0.1)
        run = client.create_training_run(
            "disk-v1",
            hyperparameters={
                "max_steps": 5000,
                "checkpoint_every_steps": 5,
                "max_seq_len": 128,
                "eval_every_steps": -1,  # no exact-match compile before the first step
            },
        )
        for event in client.watch_training_run(run.name):
            if event.HasField("checkpoint_saved"):
                break
        junk = fill(server.data_dir.parent)

        # The next checkpoint cannot be written: the worker must end, not hang.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "train" in _children(server):
            time.sleep(0.5)
        logs = sorted(server.data_dir.glob("runs/*/worker.log"))
        tail = logs[-1].read_text(errors="replace")[-3000:] if logs else "(no worker log)"
        assert "train" not in _children(server), f"the worker hangs on a full disk:\n{tail}"
        junk.unlink(missing_ok=True)

        # With room again, the run ends FAILED with its worker's reason at once.
        deadline = time.monotonic() + 60
        while (state := client.get_training_run(run.name)).state == (
            training_pb2.TRAINING_RUN_STATE_RUNNING
        ) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert state.state == training_pb2.TRAINING_RUN_STATE_FAILED, state
        message = state.state_message
        assert "disk is full" in message, message
        assert not list(client.list_training_runs(state="RUNNING"))
    assert integrity_problems(server.database_url) == []


def _children(server: ServerProcess) -> str:
    """The command lines of the server's live children."""
    lines = []
    for child in psutil.Process(server.proc.pid).children():
        with contextlib.suppress(psutil.Error):  # gone, or a zombie not yet reaped
            if child.status() != psutil.STATUS_ZOMBIE:
                lines.append(" ".join(child.cmdline()))
    return " ".join(lines)
