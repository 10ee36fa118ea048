"""The `tunix-rt` CLI, the grpcurl journey script and the Node.js client, against a real server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import ROOT, TRACES_JSONL, ServerProcess, start_server
from tunixrt.v1 import training_pb2

CLI = [sys.executable, "-m", "tunixrt.cli"]
QUICK = ["--steps", "12", "--seq-len", "64", "--eval-every", "6", "--checkpoint-every", "6"]
QUICK += ["--eval-examples", "4"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("cli"))
    yield server
    server.stop()


def cli(server: ServerProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*CLI, "--address", server.address, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200"},
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def base_dataset(server: ServerProcess) -> str:
    """A dataset to train on, whichever tests ran before."""
    with server.client() as client:
        if next(client.list_traces(page_size=1), None) is None:
            client.import_jsonl(TRACES_JSONL)
        if next(client.list_datasets(), None) is None:
            client.build_dataset("base", "v1", eval_fraction=0.1)
        return next(client.list_datasets()).name


def interrupt(watcher: subprocess.Popen[str], within: float = 30) -> int:
    """SIGINT, then the exit code, reading both pipes meanwhile (a full pipe would
    block the watcher's last writes and look like a hang). If it does not exit in
    time, SIGABRT makes faulthandler print every thread's stack into the failure."""
    watcher.send_signal(signal.SIGINT)
    try:
        watcher.communicate(timeout=within)
    except subprocess.TimeoutExpired:
        watcher.send_signal(signal.SIGABRT)
        _, err = watcher.communicate()
        raise AssertionError(f"the CLI did not exit {within:g} s after SIGINT:\n{err}") from None
    return watcher.returncode


def _default_sigint() -> None:
    # A shell's background job (`make test &`) inherits SIGINT ignored, and a Python
    # started that way never raises KeyboardInterrupt: give the CLI a terminal's default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def watch(server: ServerProcess, run: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "--address", server.address, "--json", "watch", run],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
        preexec_fn=_default_sigint,
    )


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_help_everywhere() -> None:
    commands = [
        [],
        ["serve"],
        ["traces"],
        ["traces", "import"],
        ["traces", "list"],
        ["datasets", "build"],
        ["export"],
        ["train"],
        ["watch"],
        ["runs"],
        ["runs", "eval"],
        ["runs", "generate"],
    ]
    for command in commands:
        done = subprocess.run([*CLI, *command, "--help"], capture_output=True, text=True)
        assert done.returncode == 0 and "usage: tunix-rt" in done.stdout, (command, done.stderr)
    top = subprocess.run([*CLI, "--help"], capture_output=True, text=True).stdout
    for word in ("--address", "TUNIXRT_ADDRESS", "--json", "traces", "train", "watch", "runs"):
        assert word in top


def test_cli_journey(server: ServerProcess, tmp_path: Path) -> None:
    imported = json_lines(cli(server, "--json", "traces", "import", str(TRACES_JSONL)).stdout)
    assert imported[0]["accepted_count"] == "550"  # proto3 JSON: int64 as a string
    listed = json_lines(cli(server, "--json", "traces", "list", "--limit", "3").stdout)
    assert len(listed) == 3 and all(str(t["name"]).startswith("traces/") for t in listed)
    assert "traces/" in cli(server, "traces", "list", "--limit", "2").stdout  # a table

    cli(
        server,
        *("datasets", "build", "dev", "v1", "--strategy", "STRATIFIED"),
        *("--stratify-by", "category", "--eval-fraction", "0.1"),
    )
    shown = json_lines(cli(server, "--json", "datasets", "show", "dev-v1").stdout)[0]
    assert shown["stats"]["trace_count"] == "550"  # type: ignore[index]
    out = tmp_path / "sft.jsonl"
    assert (
        "sha256 verified"
        in cli(server, "export", "dev-v1", str(out), "--format", "tunix_sft").stdout
    )
    assert len(out.read_text().splitlines()) == 550

    png = tmp_path / "loss.png"
    trained = cli(server, "train", "dev-v1", *QUICK, "--label", "via=cli", "--png", str(png))
    assert "succeeded" in trained.stdout and png.read_bytes()[:4] == b"\x89PNG"
    runs = json_lines(cli(server, "--json", "runs", "list").stdout)
    run = str(runs[0]["name"])
    assert (
        runs[0]["labels"] == {"via": "cli"} and runs[0]["state"] == "TRAINING_RUN_STATE_SUCCEEDED"
    )
    events = json_lines(cli(server, "--json", "watch", run).stdout)
    assert [int(str(e["sequence"])) for e in events] == list(range(1, len(events) + 1))
    generated = json_lines(cli(server, "--json", "runs", "generate", run, "What is 1 + 1?").stdout)
    assert generated[0]["prompt"] == "What is 1 + 1?"

    missing = cli(server, "runs", "show", "trainingRuns/nope", check=False)
    assert missing.returncode == 1 and "name" in missing.stderr  # the field violation, no traceback
    assert "Traceback" not in missing.stderr
    no_file = cli(server, "traces", "import", "/no/such.jsonl", check=False)
    assert no_file.returncode == 1 and "No such file" in no_file.stderr, no_file.stderr


def test_ctrl_c_ends_a_watch_blocked_on_a_silent_stream(tmp_path: Path) -> None:
    """A run that never starts sends nothing: the watcher sits in a blocking read,
    and SIGINT must still end it at once (the stream is read off the main thread)."""
    idle = start_server(tmp_path / "idle", env={"TUNIXRT_MAX_CONCURRENT_RUNS": "0"})
    try:
        dataset = base_dataset(idle)
        run = json_lines(cli(idle, "--json", "train", dataset, "--detach").stdout)[0]["name"]
        watcher = watch(idle, str(run))
        assert watcher.stdout is not None
        assert json.loads(watcher.stdout.readline())["state_change"]["state"].endswith("QUEUED")
        began = time.monotonic()
        assert interrupt(watcher) == 130
        assert time.monotonic() - began < 10, "Ctrl-C waited on the stream"
        with idle.client() as client:  # the run is untouched
            assert client.get_training_run(str(run)).state == training_pb2.TRAINING_RUN_STATE_QUEUED
    finally:
        idle.stop()


def test_ctrl_c_in_watch_leaves_server_and_run_alone(server: ServerProcess) -> None:
    dataset = base_dataset(server)
    train = ["train", dataset, "--steps", "5000", "--eval-examples", "4", "--detach"]
    started = json_lines(cli(server, "--json", *train).stdout)[0]
    run = str(started["name"])
    watcher = watch(server, run)
    assert watcher.stdout is not None
    for line in watcher.stdout:
        if int(json.loads(line).get("step", 0)) >= 2:
            break
    assert interrupt(watcher) == 130
    import grpc

    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    # The asyncio monitor picks the running run up, and leaves when it has ended.
    monitor = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "monitor_all.py"), "--exit-when-idle"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200", "TUNIXRT_ADDRESS": server.address},
    )
    assert monitor.stdout is not None
    picked_up = ""
    while run not in picked_up:  # however long its start takes on a busy machine
        picked_up = monitor.stdout.readline()
        assert picked_up, monitor.stderr.read() if monitor.stderr else ""
    with server.client() as client:
        assert client.get_training_run(run).state == training_pb2.TRAINING_RUN_STATE_RUNNING
        client.cancel_training_run(run)
        list(client.watch_training_run(run))
    out, err = monitor.communicate(timeout=60)
    assert monitor.returncode == 0, err
    assert run.removeprefix("trainingRuns/")[:8] in out and "cancelled" in out


def test_grpcurl_journey_script(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "grpcurl_journey.sh"), server.address],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "STEPS": "10"},
        )
        assert done.returncode == 0, done.stderr + done.stdout
        out = done.stdout
        for expected in ("tunixrt.v1.TrainingService", "'trace_count': '24'", "<start_of_turn>"):
            assert expected in out, out
        assert "state_change" in out and "step_metrics" in out
        assert "TRAINING_RUN_STATE_SUCCEEDED" in out and '"generations"' in out
        assert '"row_count": "18"' in out
        assert "rows in the order given: True" in out  # ExportTraces
        assert "stored 10" in out and '"row_count": "10"' in out  # generated, by filter
        assert "runner: tunix" in out and "num_epochs: 3" in out  # the tunix-rt manifest
    finally:
        server.stop()


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_client_lists_and_watches(server: ServerProcess, tmp_path: Path) -> None:
    """The contract is language-neutral: @grpc/grpc-js + proto-loader from proto/."""
    node_dir = ROOT / "scripts" / "node_client"
    if not (node_dir / "node_modules" / "@grpc" / "grpc-js").exists():
        npm = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=node_dir,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if npm.returncode != 0:
            pytest.skip(f"npm ci failed (no registry?): {npm.stderr[-300:]}")
    with server.client() as client:
        run = next(client.list_training_runs(state="SUCCEEDED"), None)
        if run is None:  # run alone, without test_cli_journey's run
            cli(server, "train", base_dataset(server), *QUICK)
            run = next(client.list_training_runs(state="SUCCEEDED"))
    include = sysconfig.get_paths()["purelib"]  # google/api/*.proto of googleapis-common-protos
    done = subprocess.run(
        [
            "node",
            str(node_dir / "list_and_watch.js"),
            server.address,
            run.name,
            "--include",
            include,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = json_lines(done.stdout)
    assert len([x for x in lines if "trace" in x]) == 5
    events = [x for x in lines if "sequence" in x]
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["kind"] == "state_change"
    assert events[-1]["state_change"]["state"] == "TRAINING_RUN_STATE_SUCCEEDED"  # type: ignore[index]
