"""Riding out a server or database that is briefly down.

Two layers, each where it fits:

- gRPC's own retry service config (`service_config`) retries the read-only
  streams (exports, watches) on UNAVAILABLE before their first message, inside
  the channel: at most 5 attempts, exponential backoff with gRPC's jitter.
- `call` retries idempotent unary calls (Get*, List*, and creates that carry a
  request_id, which the server deduplicates) on UNAVAILABLE for as long as the
  call's own timeout allows, with capped exponential backoff and full jitter.
  gRPC's config alone caps at 5 attempts and cannot see a request_id; a
  database restart takes longer than its ~3 s of backoff.

Nothing else is retried: a create without a request_id might have been applied.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

T = TypeVar("T")

_READ_ONLY_STREAMS = [
    {"service": "tunixrt.v1.ExportService", "method": "ExportDataset"},
    {"service": "tunixrt.v1.ExportService", "method": "ExportTraces"},
    {"service": "tunixrt.v1.TrainingService", "method": "WatchTrainingRun"},
]


def service_config() -> str:
    """The channel's retry policy for the read-only streams."""
    return json.dumps(
        {
            "methodConfig": [
                {
                    "name": _READ_ONLY_STREAMS,
                    "retryPolicy": {
                        "maxAttempts": 5,
                        "initialBackoff": "0.2s",
                        "maxBackoff": "5s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        }
    )


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 0.1
    max_s: float = 5.0
    multiplier: float = 2.0

    def delays(self) -> Iterator[float]:
        """Full jitter: each wait is uniform in [0, the capped exponential]."""
        ceiling = self.initial_s
        while True:
            yield random.uniform(0.0, ceiling)
            ceiling = min(self.max_s, ceiling * self.multiplier)


def idempotent(request: Any) -> bool:
    """Safe to send again: reads (a Get…/List…Request), and creates the server
    deduplicates by their request_id."""
    if type(request).__name__.startswith(("Get", "List")):
        return True
    return bool(getattr(request, "request_id", ""))


def call(
    invoke: Callable[[float], T], request: Any, timeout: float, backoff: Backoff = Backoff()
) -> T:
    """`invoke(remaining timeout)`, again on UNAVAILABLE while the timeout lasts."""
    deadline = time.monotonic() + timeout
    delays = backoff.delays()
    while True:
        remaining = deadline - time.monotonic()
        try:
            return invoke(max(remaining, 0.001))
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or not idempotent(request):
                raise
            wait = next(delays)
            if time.monotonic() + wait >= deadline:
                raise
            time.sleep(wait)
