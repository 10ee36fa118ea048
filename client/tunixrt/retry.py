"""Riding out a server or database that is briefly down.

`call` retries idempotent unary calls (Get*, List*, and creates that carry a
request_id, which the server deduplicates) on UNAVAILABLE for as long as the
call's own timeout allows, with capped exponential backoff and full jitter.
gRPC's retry service config would cap at 5 attempts (~3 s of backoff, shorter
than a database restart) and cannot see a request_id.

Streams are not retried by the channel: with a gRPC retry policy on a
server-streaming method (grpcio 1.85), a server killed mid-stream leaves the
reading thread blocked past the call's deadline (measured: still blocked 60 s
after a SIGKILL, with a 20 s deadline; without the policy it gets UNAVAILABLE
at once). A stream that breaks raises UNAVAILABLE, and the SDK resumes it where
it stopped: export_to_file from its last whole row (start_row), watches from
their last event (after_sequence).

Nothing else is retried: a create without a request_id might have been applied.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

T = TypeVar("T")


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
    """`invoke(remaining timeout)`, again on UNAVAILABLE while the timeout lasts. A retry
    that runs out of time raises the UNAVAILABLE that caused it, not DEADLINE_EXCEEDED:
    the server being down, not the clock, is what the caller needs to hear."""
    deadline = time.monotonic() + timeout
    delays = backoff.delays()
    unavailable: grpc.RpcError | None = None
    while True:
        remaining = deadline - time.monotonic()
        try:
            return invoke(max(remaining, 0.001))
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED and unavailable is not None:
                raise unavailable from None
            if exc.code() != grpc.StatusCode.UNAVAILABLE or not idempotent(request):
                raise
            unavailable = exc
            wait = next(delays)
            if time.monotonic() + wait >= deadline:
                raise
            time.sleep(wait)
