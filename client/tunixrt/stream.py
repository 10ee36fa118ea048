"""A server-streaming call as an iterator that the caller can cancel."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc

from .errors import from_rpc_error
from .retry import Backoff

T = TypeVar("T")
# Waits between a broken stream's reconnection attempts (full jitter).
RECONNECT = Backoff(0.2, 5.0)
RECONNECT_GIVE_UP_S = 60.0


class Stream(Iterator[T]):
    """The messages of a server-streaming call. A client that stops reading must
    cancel the call (the server keeps working for it otherwise): `close()` and
    `cancel()` do, from any thread, and so do leaving a `with` block and dropping
    the last reference. Errors arrive as TunixRtError, like every other call."""

    def __init__(self, call: Any) -> None:
        self._call = call

    def __iter__(self) -> Stream[T]:
        return self

    def __next__(self) -> T:
        try:
            message: T = next(self._call)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        return message

    def cancel(self) -> None:
        self._call.cancel()  # a no-op once the call has finished

    close = cancel

    def __enter__(self) -> Stream[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()

    def __del__(self) -> None:
        self.cancel()


class ResumingStream(Stream[T]):
    """A Stream that reopens itself after UNAVAILABLE (a server restarting, a
    connection lost) from the last message it returned: `reopen(last)` starts
    the call again after `last` (None: from the start). It gives up, raising
    Unavailable, once reconnecting has failed for `give_up_s` seconds."""

    def __init__(
        self,
        reopen: Callable[[T | None], Any],
        give_up_s: float = RECONNECT_GIVE_UP_S,
        backoff: Backoff = RECONNECT,
    ) -> None:
        super().__init__(reopen(None))
        self._reopen = reopen
        self._give_up_s = give_up_s
        self._backoff = backoff
        self._last: T | None = None
        self._closed = threading.Event()

    def __next__(self) -> T:
        failing_since: float | None = None
        delays = self._backoff.delays()
        while True:
            try:
                message: T = next(self._call)
            except grpc.RpcError as exc:
                now = time.monotonic()
                failing_since = failing_since or now
                if (
                    exc.code() != grpc.StatusCode.UNAVAILABLE
                    or self._closed.is_set()
                    or now - failing_since > self._give_up_s
                ):
                    raise from_rpc_error(exc) from None
                if self._closed.wait(next(delays)):
                    raise from_rpc_error(exc) from None
                self._call = self._reopen(self._last)
                if self._closed.is_set():  # cancelled while it reopened
                    self._call.cancel()
                continue
            self._last = message
            return message

    def cancel(self) -> None:
        self._closed.set()
        super().cancel()

    close = cancel
