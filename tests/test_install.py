"""Installs by role: the client alone, in a fresh virtualenv, drives a server and has
none of the server's or the trainer's dependencies."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from conftest import ROOT, ServerProcess

IGNORED = shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
CLIENT_SCRIPT = r"""
import importlib.util, json, sys
from tunixrt import Client, trace_from_dict

absent = ["jax", "tunix", "sqlalchemy", "alembic", "rich", "matplotlib", "tunixrt_server"]
present = [name for name in absent if importlib.util.find_spec(name) is not None]
with Client(sys.argv[1]) as rt:
    rt.create_trace(trace_from_dict({"prompt": "2+2?", "final_answer": "4", "meta": {}}))
    rt.build_dataset("lean", "v1")
    rows = b"".join(
        m.chunk.data for m in rt.export_chunks("lean-v1", format="tunix_sft") if m.HasField("chunk")
    )
    run = rt.create_training_run("lean-v1")  # the server trains nothing: it stays queued
    rt.cancel_training_run(run.name)
    kinds = [e.WhichOneof("event") for e in rt.watch_training_run(run.name)]
print(json.dumps({"present": present, "rows": rows.decode(), "kinds": kinds}))
"""


def test_client_only_install_drives_a_server(
    server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = server_factory(env={"TUNIXRT_MAX_CONCURRENT_RUNS": "0"})
    venv = tmp_path / "client-only"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # Only what the venv installed: no PYTHONPATH into this checkout.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    python = str(venv / "bin" / "python")
    # From a copy: building in place would leave build/ in the checkout.
    source = shutil.copytree(ROOT / "client", tmp_path / "client", ignore=IGNORED)
    install = [python, "-m", "pip", "install", "--quiet", str(source)]
    subprocess.run(install, check=True, timeout=900, env=env)
    out = subprocess.run(
        [python, "-c", CLIENT_SCRIPT, server.address],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    result = json.loads(out.stdout)
    assert result["present"] == []
    assert result["rows"].count("\n") == 1 and "<start_of_turn>model" in result["rows"]
    assert result["kinds"] == ["state_change", "state_change"]  # queued, cancelled

    # The CLI prints plain tables without the [monitor] extra, and says what `serve` needs.
    cli = str(venv / "bin" / "tunix-rt")
    listed = subprocess.run(
        [cli, "--address", server.address, "traces", "list"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert listed.returncode == 0 and "2+2?" in listed.stdout, listed.stderr
    serve = subprocess.run([cli, "serve"], capture_output=True, text=True, env=env)
    assert serve.returncode == 2 and "tunix-rt-server" in serve.stderr
