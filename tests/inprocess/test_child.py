"""What every process the server starts shares: the compilation cache, and a log
that may be on a full disk."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tunixrt_server.training.child import DISK_FULL_EXIT, share_compile_cache


def test_children_cache_compiles_under_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.delenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", raising=False)
    share_compile_cache(tmp_path)
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "compile-cache")
    assert os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"


def test_a_users_own_cache_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/elsewhere")
    share_compile_cache(tmp_path)
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == "/elsewhere"


def test_a_log_on_a_full_disk_does_not_change_how_the_process_ends() -> None:
    """A training process whose log and database share a disk that filled up must
    still exit DISK_FULL_EXIT (the server then says the disk is full), not die of
    its own traceback's write (exit 1) or of the final flush (Python's 120)."""
    script = (
        "from tunixrt_server.training import child\n"
        "try:\n"
        "    raise OSError(28, 'No space left on device')\n"
        "except OSError:\n"
        "    child.log_exception()\n"
        "    child.log('could not record the end')\n"
        "    child.exit_disk_full()\n"
    )
    with open("/dev/full", "w") as full:  # every write: ENOSPC
        done = subprocess.run([sys.executable, "-c", script], stderr=full, timeout=60)
    assert done.returncode == DISK_FULL_EXIT
