"""The web port (--web-address): gRPC-Web with the gRPC port's auth, limits and
errors, server streams, TLS, and the console's page."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from _grpc_web import GrpcWebClient, GrpcWebError
from google.rpc import error_details_pb2, status_pb2
from test_security import TOKENS, _self_signed

from conftest import TRACES_JSONL, ServerProcess
from tunixrt import Client, PermissionDenied, ResourceExhausted, Unauthenticated
from tunixrt.v1 import export_pb2, server_pb2, trace_pb2

WEB = ["--web-address", "127.0.0.1:0"]
TRACE = "/tunixrt.v1.TraceService/"
INFO = "/tunixrt.v1.ServerService/GetServerInfo"
EXPORT = "/tunixrt.v1.ExportService/ExportDataset"


@pytest.fixture
def secured(server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    return server_factory(*WEB, env={"TUNIXRT_TOKENS": TOKENS})


@pytest.fixture
def writer(secured: ServerProcess) -> Iterator[GrpcWebClient]:
    with GrpcWebClient(secured.web_url, token="w-secret") as web:
        yield web


def _web_code(call: Callable[[], object]) -> grpc.StatusCode:
    with pytest.raises(GrpcWebError) as err:
        call()
    return err.value.code


def test_auth_and_limits_are_the_grpc_ports(secured: ServerProcess) -> None:
    native = secured.client(token="r-secret").get_server_info()
    with GrpcWebClient(secured.web_url, token="r-secret") as reader:
        info = reader.unary(INFO, server_pb2.GetServerInfoRequest(), server_pb2.ServerInfo)
        assert info == native and (info.caller_name, info.caller_role) == ("bob", "reader")
        create = trace_pb2.BatchCreateTracesRequest(jsonl=TRACES_JSONL.read_bytes()[:2000])
        code = _web_code(
            lambda: reader.unary(
                TRACE + "BatchCreateTraces", create, trace_pb2.BatchCreateTracesResponse
            )
        )
        assert code == grpc.StatusCode.PERMISSION_DENIED
    with secured.client(token="r-secret") as native_reader, pytest.raises(PermissionDenied):
        native_reader.batch_create_traces(jsonl=TRACES_JSONL.read_bytes()[:2000])

    for token in ("forged", ""):
        with GrpcWebClient(secured.web_url, token=token) as stranger:
            code = _web_code(
                lambda: stranger.unary(
                    INFO, server_pb2.GetServerInfoRequest(), server_pb2.ServerInfo
                )
            )
            assert code == grpc.StatusCode.UNAUTHENTICATED
        with secured.client(token=token) as native_stranger, pytest.raises(Unauthenticated):
            native_stranger.get_server_info()

    huge = trace_pb2.BatchCreateTracesRequest(jsonl=b"x" * (70 << 20))
    with GrpcWebClient(secured.web_url, token="w-secret") as web:
        code = _web_code(
            lambda: web.unary(
                TRACE + "BatchCreateTraces", huge, trace_pb2.BatchCreateTracesResponse
            )
        )
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    with secured.client(token="w-secret") as native_writer, pytest.raises(ResourceExhausted):
        native_writer.batch_create_traces(jsonl=huge.jsonl)
    assert secured.count("traces") == 0


def test_errors_carry_their_details_and_streams_stream(
    secured: ServerProcess, writer: GrpcWebClient
) -> None:
    lines = TRACES_JSONL.read_bytes().splitlines(keepends=True)[:50]
    bad = trace_pb2.BatchCreateTracesRequest(jsonl=b"".join(lines[:3]) + b"{oops\n")
    with pytest.raises(GrpcWebError) as err:
        writer.unary(TRACE + "BatchCreateTraces", bad, trace_pb2.BatchCreateTracesResponse)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    status = status_pb2.Status.FromString(err.value.details)
    request = error_details_pb2.BadRequest()
    assert any(d.Unpack(request) for d in status.details)
    assert [v.field for v in request.field_violations] == ["jsonl[3].trace"]

    made = writer.unary(
        TRACE + "BatchCreateTraces",
        trace_pb2.BatchCreateTracesRequest(jsonl=b"".join(lines)),
        trace_pb2.BatchCreateTracesResponse,
    )
    assert made.created_count == 50 and secured.count("traces") == 50
    code = _web_code(
        lambda: writer.unary(
            TRACE + "ImportTraces", trace_pb2.ImportTracesRequest(), trace_pb2.ImportTracesResponse
        )
    )
    assert code == grpc.StatusCode.UNIMPLEMENTED

    with secured.client(token="w-secret") as native:
        native.build_dataset("web", "v1")
        expected = [c.SerializeToString() for c in native.export_chunks("web-v1", rows_per_chunk=7)]
    chunks = writer.stream(
        EXPORT,
        export_pb2.ExportDatasetRequest(
            dataset="web-v1", rows_per_chunk=7, format=export_pb2.EXPORT_FORMAT_TRACE
        ),
        export_pb2.ExportDatasetResponse,
    )
    assert [c.SerializeToString() for c in chunks] == expected and len(expected) > 2


def test_the_page_loads_only_from_the_server(secured: ServerProcess) -> None:
    page = httpx.get(secured.web_url)
    assert page.status_code == 200 and "<html" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")


def test_tls_on_the_web_port(server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server = server_factory(
        *WEB, env={"TUNIXRT_TLS_CERT_FILE": str(cert), "TUNIXRT_TLS_KEY_FILE": str(key)}
    )
    assert server.web_url.startswith("https://")
    with GrpcWebClient(server.web_url, cafile=str(cert)) as web:
        info = web.unary(INFO, server_pb2.GetServerInfoRequest(), server_pb2.ServerInfo)
        assert info.server_version
    with pytest.raises(httpx.HTTPError):
        httpx.get(server.web_url.replace("https", "http"))
    with Client(server.address, root_certificates=cert.read_bytes()) as native:
        assert native.get_server_info().server_version == info.server_version
