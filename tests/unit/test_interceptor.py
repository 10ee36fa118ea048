"""The interceptor every RPC goes through, with a fake servicer context."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from grpc_status import rpc_status

from tunixrt.v1 import trace_pb2
from tunixrt_server.api.auth import Authorizer
from tunixrt_server.api.interceptors import ErrorInterceptor
from tunixrt_server.core.errors import bad_field

METHOD = "/tunixrt.v1.TraceService/GetTrace"


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str, trailers: Any) -> None:
        super().__init__(details)
        self.code, self.details, self.trailers = code, details, trailers


class FakeContext:
    def __init__(self, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self._metadata = metadata

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    async def abort(self, code: grpc.StatusCode, details: str = "", trailers: Any = None) -> None:
        raise Aborted(code, details, trailers)


@dataclass
class Details:
    method: str
    invocation_metadata: tuple[tuple[str, str | bytes], ...] = ()


def call(
    behaviour: Callable[[Any, Any], Awaitable[Any]],
    request: Any,
    *,
    tokens: list[tuple[str, str, str]] | None = None,
    metadata: tuple[tuple[str, str], ...] = (),
    method: str = METHOD,
    wire: bytes | None = None,
) -> Any:
    """The intercepted handler on `request` (or on raw `wire` bytes, decoded the way
    the server decodes them)."""

    async def run() -> Any:
        async def continuation(details: Any) -> grpc.RpcMethodHandler[Any, Any]:
            return grpc.unary_unary_rpc_method_handler(
                behaviour, request_deserializer=trace_pb2.GetTraceRequest.FromString
            )

        interceptor = ErrorInterceptor(Authorizer(tokens or []))
        handler = await interceptor.intercept_service(continuation, Details(method))
        given = request if wire is None else handler.request_deserializer(wire)
        return await handler.unary_unary(given, FakeContext(metadata))

    return asyncio.run(run())


def status_of(aborted: Aborted) -> Any:
    return rpc_status.from_call(_Call(aborted))


class _Call:
    def __init__(self, aborted: Aborted) -> None:
        self._aborted = aborted

    def code(self) -> grpc.StatusCode:
        return self._aborted.code

    def details(self) -> str:
        return self._aborted.details

    def trailing_metadata(self) -> Any:
        return self._aborted.trailers


async def echo(request: Any, context: Any) -> Any:
    return request


def test_a_good_request_passes_through() -> None:
    request = trace_pb2.GetTraceRequest(name="traces/x")
    assert call(echo, request) == request


def test_api_errors_become_their_status_with_details() -> None:
    async def refuse(request: Any, context: Any) -> Any:
        raise bad_field("name", "is wrong")

    with pytest.raises(Aborted) as err:
        call(refuse, trace_pb2.GetTraceRequest())
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [d.type_url.rsplit(".", 1)[-1] for d in status_of(err.value).details] == [
        "ErrorInfo",
        "BadRequest",
    ]


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (KeyError("bug"), grpc.StatusCode.INTERNAL),
    ],
)
def test_faults_map_to_codes_never_unknown(fault: Exception, code: grpc.StatusCode) -> None:
    async def broken(request: Any, context: Any) -> Any:
        raise fault

    with pytest.raises(Aborted) as err:
        call(broken, trace_pb2.GetTraceRequest())
    assert err.value.code == code


def test_nul_in_any_field_is_refused_before_the_handler() -> None:
    with pytest.raises(Aborted) as err:
        call(echo, trace_pb2.GetTraceRequest(name="traces/\x00"))
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "U+0000" in err.value.details


def test_tokens_and_roles() -> None:
    tokens = [("bot", "writer", "w-secret"), ("dash", "reader", "r-secret")]
    request = trace_pb2.GetTraceRequest(name="traces/x")
    with pytest.raises(Aborted) as missing:
        call(echo, request, tokens=tokens)
    assert missing.value.code == grpc.StatusCode.UNAUTHENTICATED
    reader = (("authorization", "Bearer r-secret"),)
    assert call(echo, request, tokens=tokens, metadata=reader) == request
    with pytest.raises(Aborted) as denied:
        call(echo, request, tokens=tokens, metadata=reader, method=METHOD.replace("Get", "Delete"))
    assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED
    export = "/tunixrt.v1.ExportService/ExportDataset"
    assert call(echo, request, tokens=tokens, metadata=reader, method=export) == request
    with pytest.raises(Aborted) as writes:  # an Export* name, but it writes server files
        call(echo, request, tokens=tokens, metadata=reader, method="/x.TrainingService/ExportModel")
    assert writes.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_undecodable_bytes_are_invalid_argument_not_unknown() -> None:
    with pytest.raises(Aborted) as err:
        call(echo, None, wire=b"\xff\xff\xff")
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "decode" in err.value.details
