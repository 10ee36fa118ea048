"""Server interceptor around every RPC kind: auth first, then exceptions to statuses.

ApiError becomes its own status with details; anything unexpected is logged
and answered INTERNAL, so one bad request never takes the server down and a
client mistake is never UNKNOWN. Auth refusals are ApiErrors too, so they
carry an ErrorInfo like every other error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from ..core import nul_check
from ..core.errors import ApiError, FieldViolation, bad_field, invalid_argument
from ..storage.db import causes, database_unreachable, disk_full
from . import metrics
from .auth import Authorizer
from .status import status_code, to_status

log = logging.getLogger(__name__)


class _Undecodable:
    """Stands in for a request whose bytes did not parse, so the handler can refuse it."""

    def __init__(self, error: str) -> None:
        self.error = error


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # grpc would answer UNKNOWN
            return _Undecodable(str(exc))

    return deserialize


def _decoded(request: Any) -> Any:
    if isinstance(request, _Undecodable):
        raise bad_field(
            "request",
            f"cannot decode the request message: {request.error}",
            reason="MALFORMED_REQUEST",
        )
    return request


def _checked(request: Any) -> Any:
    """A single request message: decodable, and no NUL in any string. (A stream's
    items, ImportTraces' traces, are judged one by one in validation.py.)"""
    request = _decoded(request)
    if isinstance(request, Message):
        nul = nul_check.message_paths(request)
        if nul:
            raise invalid_argument(
                [FieldViolation(path, nul_check.RULE) for path in nul], reason="NUL_CHARACTER"
            )
    return request


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        yield _decoded(request)


def _code(exc: BaseException) -> grpc.StatusCode:
    """The status an exception ends its call with."""
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):  # the client went away
        return grpc.StatusCode.CANCELLED
    if isinstance(exc, ApiError):
        return status_code(exc)
    if disk_full(exc):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if database_unreachable(exc):
        return grpc.StatusCode.UNAVAILABLE
    return grpc.StatusCode.INTERNAL


def _observe(method: str, code: grpc.StatusCode, started: float) -> None:
    metrics.RPCS.labels(method, code.name).inc()
    metrics.RPC_SECONDS.labels(method).observe(time.perf_counter() - started)


def _unavailable(exc: Exception, method: str, database: str) -> ApiError:
    cause = next((e for e in causes(exc) if e.__cause__ is None), exc)
    log.warning("%s: the database %s cannot be reached: %s", method, database, cause)
    return ApiError(
        "UNAVAILABLE",
        f"the database {database} cannot be reached ({type(cause).__name__}: "
        f"{str(cause).strip()[:300]}); retry (a create with a request_id is safe to retry)",
        "DATABASE_UNAVAILABLE",
        metadata={"database": database},
    )


async def _abort(
    context: grpc.aio.ServicerContext[Any, Any], exc: Exception, method: str, database: str
) -> None:
    if database_unreachable(exc):
        exc = _unavailable(exc, method, database)
    elif disk_full(exc):
        log.error(
            "%s: the disk is full (%s); reads go on, writes fail until space is freed", method, exc
        )
        exc = ApiError(
            "RESOURCE_EXHAUSTED",
            "the server's disk is full: this request's write was rolled back (ImportTraces "
            "keeps the batches acknowledged before it); free space on the server and retry",
            "DISK_FULL",
        )
    if isinstance(exc, ApiError):
        status = to_status(exc)
        await context.abort(status.code, status.details, status.trailing_metadata)
    log.exception("unhandled error in %s", method, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}; see the server log")


def _passthrough(exc: BaseException) -> bool:
    # AbortError is how grpc.aio unwinds context.abort; CancelledError is a
    # client that went away. Both must propagate untouched.
    return isinstance(exc, asyncio.CancelledError | grpc.aio.AbortError)


def _wrap_unary(
    inner: Callable[[Any, Any], Awaitable[Any]],
    method: str,
    auth: Authorizer,
    database: str,
    *,
    streaming_request: bool = False,
) -> Callable[[Any, Any], Awaitable[Any]]:
    async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        started, code = time.perf_counter(), grpc.StatusCode.OK
        try:
            auth.check(method, context.invocation_metadata())
            request = _checked_stream(request) if streaming_request else _checked(request)
            return await inner(request, context)
        except BaseException as exc:
            code = _code(exc)
            if _passthrough(exc) or not isinstance(exc, Exception):
                raise
            await _abort(context, exc, method, database)
        finally:
            _observe(method, code, started)

    return behavior


def _wrap_stream(
    inner: Callable[[Any, Any], AsyncIterator[Any]],
    method: str,
    auth: Authorizer,
    max_stream_s: float,
    database: str,
) -> Callable[[Any, Any], AsyncIterator[Any]]:
    async def behavior(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        started, code = time.perf_counter(), grpc.StatusCode.OK
        streams = metrics.OPEN_STREAMS.labels(method)
        streams.inc()
        try:
            auth.check(method, context.invocation_metadata())
            stream = inner(_checked(request), context)
            if not max_stream_s:
                async for response in stream:
                    yield response
                return
            # Each wait for the next message is bounded by what is left of the limit
            # (asyncio.timeout would fire while grpc, not this generator, is running).
            deadline = asyncio.get_running_loop().time() + max_stream_s
            while True:
                left = deadline - asyncio.get_running_loop().time()
                try:
                    response = await asyncio.wait_for(anext(stream), max(left, 0.0))
                except StopAsyncIteration:
                    return
                yield response
        except TimeoutError:
            code = grpc.StatusCode.DEADLINE_EXCEEDED
            await _abort(context, _stream_too_long(method, max_stream_s), method, database)
        except BaseException as exc:
            code = _code(exc)
            if _passthrough(exc) or not isinstance(exc, Exception):
                raise
            await _abort(context, exc, method, database)
        finally:
            streams.dec()
            _observe(method, code, started)

    return behavior


def _stream_too_long(method: str, limit: float) -> ApiError:
    return ApiError(
        "DEADLINE_EXCEEDED",
        f"{method.rsplit('/', 1)[-1]} ran for the server's max_stream_s ({limit:g} s); "
        "call again to go on (WatchTrainingRun: with after_sequence = the last sequence seen)",
        "STREAM_TOO_LONG",
    )


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    # Handlers are typed loosely: grpc's stubs describe sync behaviours, and
    # these wrap the async ones grpc.aio actually registers.
    def __init__(
        self, auth: Authorizer | None = None, max_stream_s: float = 0.0, database: str = ""
    ) -> None:
        self._auth = auth or Authorizer([])
        self._max_stream_s = max_stream_s
        self._database = database or "(unnamed)"  # named in UNAVAILABLE errors

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method
        kw = {
            "request_deserializer": _tolerant(handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary, method, self._auth, self._database), **kw
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                _wrap_unary(
                    handler.stream_unary, method, self._auth, self._database, streaming_request=True
                ),
                **kw,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(
                    handler.unary_stream, method, self._auth, self._max_stream_s, self._database
                ),
                **kw,
            )
        return grpc.stream_stream_rpc_method_handler(
            _wrap_stream(
                handler.stream_stream, method, self._auth, self._max_stream_s, self._database
            ),
            **kw,
        )
