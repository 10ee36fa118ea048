"""Helpers shared by the benchmark scripts: a real server process and timing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tunixrt.generators import generate_jsonl

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus" / "dev-reasoning-v2.jsonl"


@contextmanager
def running_server(data_dir: Path, *extra: str) -> Iterator[tuple[str, int]]:
    """Start `tunix-rt serve` on a free loopback port; yield (address, pid)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tunixrt.cli",
                "serve",
                "--address",
                "127.0.0.1:0",
                "--data-dir",
                str(data_dir),
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "JAX_PLATFORMS": "cpu"},
        )
    try:
        deadline = time.monotonic() + 60
        while not (m := re.search(r"serving on (\S+:\d+)", log_path.read_text())):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log_path.read_text())
            time.sleep(0.05)
        _settled(m.group(1))
        yield m.group(1), proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def _settled(address: str) -> None:
    """Wait for the server's one-time runtime probe (a process importing JAX), so that
    no measurement shares the CPU with it."""
    from tunixrt import Client

    deadline = time.monotonic() + 120
    with Client(address) as client:
        while client.get_server_info().runtime_status == "probing":
            if time.monotonic() > deadline:
                return
            time.sleep(0.2)


def generated_lines(count: int, seed: int = 0) -> list[bytes]:
    """`count` synthetic trace lines from the project's generators: half arithmetic
    word problems, half High Card Duel episodes (no trailing newlines)."""
    half = count // 2
    lines = [*generate_jsonl("arithmetic", count - half, seed)]
    lines += generate_jsonl("high_card_duel", half, seed)
    return [line[:-1] for line in lines]


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s"
