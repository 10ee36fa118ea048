from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tunixrt_server.core.errors import ApiError
from tunixrt_server.core.names import (
    check_key,
    check_request_id,
    inside_data_dir,
    parse_dataset_name,
    parse_uuid_name,
)


def test_uuid_names_with_or_without_collection() -> None:
    raw = str(uuid.uuid4())
    assert parse_uuid_name(f"traces/{raw}", "traces") == raw
    assert parse_uuid_name(raw.upper(), "traces") == raw
    for bad in ("", "traces/nope", "../../etc/passwd"):
        with pytest.raises(ApiError):
            parse_uuid_name(bad, "traces")


@pytest.mark.parametrize("key", ["..", "a/b", "A", "-lead", "a..b", "x" * 129, "é"])
def test_keys_cannot_escape_or_surprise(key: str) -> None:
    with pytest.raises(ApiError):
        check_key(key, "version")


def test_dataset_names_and_request_ids() -> None:
    assert parse_dataset_name("datasets/dev-v1") == "dev-v1" == parse_dataset_name("dev-v1")
    assert check_request_id("") is None and check_request_id("r-1") == "r-1"
    with pytest.raises(ApiError):
        check_request_id("x" * 129)


def test_paths_inside_the_data_dir(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    assert inside_data_dir(root, "models/x", "f") == root / "models" / "x"
    for bad, says in (
        ("../x", "inside"),
        ("/etc", "inside"),
        ("", "required"),
        ("x" * 300, "too long"),
        ("a/" * 600, "too long"),
    ):
        with pytest.raises(ApiError, match=says):
            inside_data_dir(root, bad, "f")
