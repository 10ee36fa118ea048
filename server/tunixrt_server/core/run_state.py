"""A training run's lifecycle as stored: plain values, no proto, so storage and the
training worker share them without depending on the layer that speaks proto.
The numbers are tunixrt.v1.TrainingRunState's (tests/unit/test_invariants.py
checks them against training.proto)."""

from __future__ import annotations

import enum


class RunState(enum.IntEnum):
    QUEUED = 1
    RUNNING = 2
    SUCCEEDED = 3
    FAILED = 4
    CANCELLED = 5


TERMINAL = (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED)
UNFINISHED = (RunState.QUEUED, RunState.RUNNING)
