"""The generated stubs match proto/ and the contract is buf-lint clean."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import ROOT


def test_generated_stubs_are_fresh() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/gen_protos.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_lint_clean() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/gen_protos.py", "--lint"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_committed_console_matches_a_fresh_build() -> None:
    """The console's generated TypeScript and its bundle, rebuilt from proto/ and web/
    with the lock file's tools, equal what is committed. Where Node is present."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("no Node: the committed console bundle is not rebuilt here")
    if not (ROOT / "web" / "node_modules" / ".bin" / "esbuild").exists():
        installed = subprocess.run(
            ["npm", "ci", "--prefix", "web", "--no-audit", "--no-fund"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if installed.returncode:
            pytest.skip(f"npm ci failed (no registry?): {installed.stderr[-500:]}")
    result = subprocess.run(
        [sys.executable, "scripts/build_console.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
