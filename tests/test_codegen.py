"""The generated stubs match proto/ and the contract is buf-lint clean."""

from __future__ import annotations

import subprocess
import sys

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
