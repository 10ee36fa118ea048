"""GetServerInfo: versions, devices, presets and limits, open to readers; the CLI and
grpcurl show it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from conftest import ServerProcess
from tunixrt import Client


def test_server_info_describes_the_runtime_presets_and_limits(
    server_factory: Callable[..., ServerProcess],
) -> None:
    tokens = "ops:writer:w-token,dash:reader:r-token"
    server = server_factory(
        env={"TUNIXRT_PROBE_RUNTIME": "1", "TUNIXRT_TOKENS": tokens, "TUNIXRT_MAX_QUEUED_RUNS": "7"}
    )
    with Client(server.address, token="r-token") as reader:  # the reader role may ask
        deadline = time.monotonic() + 120
        while (about := reader.get_server_info()).runtime_status == "probing":
            assert time.monotonic() < deadline, "the runtime probe never answered"
            time.sleep(0.5)
    assert about.runtime_status == "ok", about.runtime_status
    assert about.api_package == "tunixrt.v1" and about.server_version
    assert about.library_versions["tunix"] == "0.1.7" and about.library_versions["jax"]
    assert about.jax_backend == "cpu" and [d.platform for d in about.devices] == ["cpu"]
    presets = {p.name: p for p in about.presets}
    assert 900_000 < presets["tiny-gemma3"].parameter_count < 1_100_000
    assert presets["gemma3-270m"].needs_weights and presets["gemma3-270m"].parameter_count > 2e8
    assert presets["tiny-gemma3"].default_hyperparameters.learning_rate == 3e-2
    assert about.auth_enabled and about.limits.max_queued_runs == 7
    assert about.database == "sqlite"

    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "tunixrt.cli",
            "--address",
            server.address,
            "--token",
            "r-token",
            "info",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "tiny-gemma3" in cli.stdout and "JAX cpu [ok]" in cli.stdout, cli.stdout

    grpcurl = Path(sys.executable).parent / "grpcurl"  # from the dev dependencies
    if grpcurl.exists():
        shown = subprocess.run(
            [
                str(grpcurl),
                "-plaintext",
                "-H",
                "authorization: Bearer r-token",
                server.address,
                "tunixrt.v1.ServerService/GetServerInfo",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        as_json = json.loads(shown.stdout)
        assert {p["name"] for p in as_json["presets"]} >= {"tiny-gemma3", "gemma3-1b"}
        assert as_json["devices"][0]["platform"] == "cpu"
