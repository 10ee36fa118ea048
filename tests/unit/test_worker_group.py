"""Worker-group settings (training/group.py); tests/test_workers.py trains a run over one."""

from __future__ import annotations

from typing import Any

import pytest

from tunixrt_server.config import ConfigError, load_settings
from tunixrt_server.training import group
from tunixrt_server.training.group import Group


def test_one_process_is_no_group() -> None:
    assert group.of(load_settings()) is None


def test_a_group_takes_its_place_from_the_settings() -> None:
    settings = load_settings(coordinator_address="10.0.0.1:7000", num_processes="2", process_id="1")
    assert group.of(settings) == Group("10.0.0.1:7000", 2, 1)
    assert Group("10.0.0.1:7000", 2, 1).args() == ["--distributed", "10.0.0.1:7000", "2", "1"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_processes": 2}, "needs coordinator_address"),
        ({"num_processes": 2, "process_id": 2, "coordinator_address": "h:1"}, "process_id 2"),
        ({"process_id": -1}, "process_id -1"),
        ({"num_processes": 0}, "num_processes 0"),
        (
            {"num_processes": 2, "coordinator_address": "h:1", "max_concurrent_runs": 2},
            "one run at a time",
        ),
    ],
)
def test_a_group_that_cannot_form_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        group.of(load_settings(**overrides))
