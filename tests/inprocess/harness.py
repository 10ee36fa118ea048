"""The real servicers behind the real interceptor on grpcio-testing's in-process server.

grpc_testing drives synchronous servicers; ours are grpc.aio coroutines. Each
method here is a synchronous stand-in that hands the call to the servicer's
handler, as wrapped by `ErrorInterceptor` (auth, NUL and decode checks, errors
to statuses), on an event loop thread, and reports an abort back to grpc_testing
with its code, details and trailers (`google.rpc.Status` details included).
No sockets, no subprocess: a call costs microseconds, not a server start.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import grpc_testing
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.rpc import status_pb2

from tunixrt_server.api.interceptors import ErrorInterceptor
from tunixrt_server.app import Services

Metadata = Sequence[tuple[str, Any]]
M = TypeVar("M", bound=Message)


@dataclass
class Result:
    """How a call ended, with the `google.rpc.Status` its trailers carry."""

    responses: list[Any]
    code: grpc.StatusCode
    details: str
    trailers: Metadata

    @property
    def response(self) -> Any:
        (response,) = self.responses
        return response

    @property
    def status(self) -> status_pb2.Status:
        """The google.rpc.Status in the trailers (empty when there is none)."""
        status = status_pb2.Status()
        for key, value in self.trailers:
            if key == "grpc-status-details-bin":
                status.ParseFromString(value)
        return status

    def detail(self, kind: type[M]) -> M:
        """The first detail of that type (BadRequest, ErrorInfo, ResourceInfo...)."""
        for any_detail in self.status.details:
            if any_detail.Is(kind.DESCRIPTOR):
                found = kind()
                any_detail.Unpack(found)
                return found
        raise AssertionError(f"no {kind.__name__} in {self.status}")


class _AioContext:
    """What the interceptor and servicers use of grpc.aio's ServicerContext."""

    def __init__(self, context: grpc.ServicerContext) -> None:
        self._context = context
        self.ended: tuple[grpc.StatusCode, str, Metadata] | None = None

    def invocation_metadata(self) -> Any:
        return self._context.invocation_metadata()

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Metadata = ()
    ) -> None:
        self.ended = (code, details, tuple(trailing_metadata))
        raise grpc.aio.AbortError()

    def end(self) -> None:
        """Hands an abort to grpc_testing (its own abort() drops trailers)."""
        if self.ended is not None:
            code, details, trailers = self.ended
            self._context.set_trailing_metadata(tuple(trailers))
            self._context.set_code(code)
            self._context.set_details(details)


class _Registry:
    """Stands in for a grpc server to collect a generated add_*_to_server's handlers."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self.handlers.update({f"/{service}/{name}": h for name, h in handlers.items()})


class InProcess:
    """Call any RPC of the given services in process:

    `rt.call("TraceService", "GetTrace", request, metadata=...)` -> Result.
    """

    def __init__(self, services: Services, interceptor: ErrorInterceptor) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        registry = _Registry()
        services.add_to(registry)
        self.descriptors: dict[str, ServiceDescriptor] = {}
        servicers: dict[ServiceDescriptor, object] = {}
        for descriptor in services.descriptors():
            self.descriptors[descriptor.name] = descriptor
            servicers[descriptor] = _Servicer(self, descriptor, registry.handlers, interceptor)
        self._server = grpc_testing.server_from_dictionary(
            servicers, grpc_testing.strict_real_time()
        )

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    def call(
        self,
        service: str,
        method: str,
        request: Message | Sequence[Message],
        *,
        metadata: Metadata = (),
    ) -> Result:
        descriptor = self.descriptors[service].methods_by_name[method]
        if descriptor.client_streaming:
            rpc = self._server.invoke_stream_unary(descriptor, metadata, None)
            for item in request:  # type: ignore[union-attr]
                rpc.send_request(item)
            rpc.requests_closed()
            response, trailers, code, details = rpc.termination()
            return Result([response] if response is not None else [], code, details, trailers)
        if descriptor.server_streaming:
            rpc = self._server.invoke_unary_stream(descriptor, metadata, request, None)
            trailers, code, details = rpc.termination()
            responses = []
            while True:  # the stream has ended: every response is queued
                try:
                    responses.append(rpc.take_response())
                except ValueError:
                    break
            return Result(responses, code, details, trailers)
        rpc = self._server.invoke_unary_unary(descriptor, metadata, request, None)
        response, trailers, code, details = rpc.termination()
        return Result([response] if response is not None else [], code, details, trailers)


class _Servicer:
    """One service's methods as grpc_testing calls them: behaviour(request, context)."""

    def __init__(
        self,
        rt: InProcess,
        descriptor: ServiceDescriptor,
        handlers: dict[str, grpc.RpcMethodHandler[Any, Any]],
        interceptor: ErrorInterceptor,
    ) -> None:
        self._rt = rt
        self._behaviours: dict[str, Callable[..., Any]] = {}
        for method in descriptor.methods:
            path = f"/{descriptor.full_name}/{method.name}"
            self._behaviours[method.name] = self._wrap(method, path, handlers[path], interceptor)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        try:
            return self._behaviours[name]
        except KeyError:
            raise AttributeError(name) from None

    def _wrap(
        self,
        method: MethodDescriptor,
        path: str,
        handler: grpc.RpcMethodHandler[Any, Any],
        interceptor: ErrorInterceptor,
    ) -> Callable[..., Any]:
        async def continuation(_: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any]:
            return handler

        details: Any = _Details(path)  # all intercept_service reads of HandlerCallDetails
        wrapped = self._rt.run(interceptor.intercept_service(continuation, details))
        run = self._rt.run

        if method.server_streaming:
            stream = wrapped.unary_stream

            def behaviour_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                aio = _AioContext(context)

                async def collect() -> list[Any]:
                    out: list[Any] = []
                    try:
                        async for response in stream(request, aio):
                            out.append(response)
                    except grpc.aio.AbortError:
                        pass
                    return out

                responses = run(collect())
                aio.end()
                yield from responses

            return behaviour_stream

        unary = wrapped.stream_unary if method.client_streaming else wrapped.unary_unary

        def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
            aio = _AioContext(context)
            if method.client_streaming:
                request = _aiter(list(request))
            try:
                return run(unary(request, aio))
            except grpc.aio.AbortError:
                aio.end()
                return None

        return behaviour


@dataclass
class _Details:
    method: str
    invocation_metadata: tuple[tuple[str, str], ...] = ()


async def _aiter(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item
