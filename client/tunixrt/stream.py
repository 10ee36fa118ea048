"""A server-streaming call as an iterator that the caller can cancel."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import grpc

from .errors import from_rpc_error

T = TypeVar("T")


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
