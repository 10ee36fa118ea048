"""Errors storage raises when a delete would break an immutable reference."""

from __future__ import annotations


class TraceInUse(Exception):
    def __init__(self, dataset_keys: list[str]) -> None:
        super().__init__(f"trace is used by datasets {dataset_keys}")
        self.dataset_keys = dataset_keys
