"""The compilation cache every training and inference process shares."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tunixrt_server.training.child import share_compile_cache


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
