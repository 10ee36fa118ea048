"""Server interceptor that maps exceptions to gRPC statuses for every RPC kind.

ApiError becomes its own status with details; anything unexpected is logged
and answered INTERNAL, so one bad request never takes the server down and a
client mistake is never UNKNOWN.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from .errors import ApiError

log = logging.getLogger(__name__)


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: Exception, method: str) -> None:
    if isinstance(exc, ApiError):
        status = exc.to_status()
        await context.abort(status.code, status.details, status.trailing_metadata)
    log.exception("unhandled error in %s", method, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}; see the server log")


def _passthrough(exc: BaseException) -> bool:
    # AbortError is how grpc.aio unwinds context.abort; CancelledError is a
    # client that went away. Both must propagate untouched.
    return isinstance(exc, asyncio.CancelledError | grpc.aio.AbortError)


def _wrap_unary(
    inner: Callable[[Any, Any], Awaitable[Any]], method: str
) -> Callable[[Any, Any], Awaitable[Any]]:
    async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await inner(request, context)
        except Exception as exc:
            if _passthrough(exc):
                raise
            await _abort(context, exc, method)

    return behavior


def _wrap_stream(
    inner: Callable[[Any, Any], AsyncIterator[Any]], method: str
) -> Callable[[Any, Any], AsyncIterator[Any]]:
    async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        try:
            async for response in inner(request, context):
                yield response
        except Exception as exc:
            if _passthrough(exc):
                raise
            await _abort(context, exc, method)

    return behavior


class ErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method
        kw = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(_wrap_unary(handler.unary_unary, method), **kw)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(_wrap_unary(handler.stream_unary, method), **kw)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(_wrap_stream(handler.unary_stream, method), **kw)
        return grpc.stream_stream_rpc_method_handler(_wrap_stream(handler.stream_stream, method), **kw)
