"""Property-based bad input for every RPC, against SQLite and PostgreSQL at once: each
answer is a proper status code (never UNKNOWN or INTERNAL for a client's mistake),
both backends give the same code for the same request, and the servers keep serving."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor as _descriptor
from google.protobuf import message_factory
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import PostgresCluster, ServerProcess, start_server
from tunixrt.v1 import dataset_pb2, export_pb2, trace_pb2, training_pb2

FD = _descriptor.FieldDescriptor
SERVER_FAULTS = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
METHODS = [
    method
    for module in (trace_pb2, dataset_pb2, export_pb2, training_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]
# Strings that mean something to the server, next to arbitrary text.
NAMES = [
    "",
    "..",
    "../../etc/passwd",
    "/etc",
    "datasets/",
    "datasets/dev-v1",
    f"traces/{uuid.UUID(int=0)}",
    f"trainingRuns/{uuid.uuid4()}",
    'category = "x" OR 1=1',
    "steps >= 2 AND",
    "meta.a.b = 1",
    "x" * 5000,
    "\x00\ud7ff",
]
INT_RANGES = {
    FD.TYPE_INT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FD.TYPE_INT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FD.TYPE_UINT32: (0, 2**32 - 1),
    FD.TYPE_FIXED32: (0, 2**32 - 1),
    FD.TYPE_UINT64: (0, 2**64 - 1),
    FD.TYPE_FIXED64: (0, 2**64 - 1),
}


# NUL and the other C0 controls (and DEL), which databases treat differently.
CONTROLS = st.text(
    alphabet=st.one_of(st.characters(max_codepoint=0x1F), st.just("\x7f"), st.just("a")),
    min_size=1,
    max_size=12,
)


def scalar(field: _descriptor.FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type == FD.TYPE_STRING:
        return st.one_of(st.sampled_from(NAMES), st.text(max_size=40), CONTROLS)
    if field.type == FD.TYPE_BYTES:
        return st.binary(max_size=300)
    if field.type == FD.TYPE_BOOL:
        return st.booleans()
    if field.type in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return st.floats(width=64 if field.type == FD.TYPE_DOUBLE else 32)
    if field.type == FD.TYPE_ENUM:
        return st.integers(-3, 12)  # unknown values too: proto3 enums are open
    low, high = INT_RANGES[field.type]
    return st.one_of(st.integers(low, high), st.integers(-5, 2_000))


@st.composite
def messages(draw: st.DrawFn, descriptor: _descriptor.Descriptor, depth: int = 0) -> Message:
    msg = message_factory.GetMessageClass(descriptor)()
    for field in descriptor.fields:
        if not draw(st.booleans()):
            continue
        target = getattr(msg, field.name)
        if field.message_type is not None and field.message_type.full_name in (
            "google.protobuf.Struct",
        ):
            value = st.one_of(
                st.text(max_size=8), CONTROLS, st.floats(allow_nan=False), st.booleans()
            )
            keys = st.one_of(st.text(max_size=8), CONTROLS)
            target.update(draw(st.dictionaries(keys, value, max_size=3)))
        elif field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            for key in draw(st.lists(scalar(key_field), max_size=3)):
                if value_field.message_type is None:
                    target[key] = draw(scalar(value_field))
                elif depth < 2:
                    target[key].CopyFrom(draw(messages(value_field.message_type, depth + 1)))
        elif field.message_type is not None:
            if depth >= 2:
                continue
            count = draw(st.integers(0, 3)) if field.is_repeated else 1
            for _ in range(count):
                child = draw(messages(field.message_type, depth + 1))
                (target.add() if field.is_repeated else target).CopyFrom(child)
        elif field.is_repeated:
            target.extend(draw(st.lists(scalar(field), max_size=4)))
        else:
            setattr(msg, field.name, draw(scalar(field)))
    return msg


@pytest.fixture(scope="module")
def fuzzed(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[list[ServerProcess]]:
    """A SQLite server and, where the machine has PostgreSQL, a PostgreSQL one. Every
    request goes to both in the same order, so their states stay alike."""
    # Nothing trains: a fuzzed CreateTrainingRun that happens to be valid only queues.
    env = {"TUNIXRT_MAX_CONCURRENT_RUNS": "0"}
    servers = [start_server(tmp_path_factory.mktemp("fuzz-sqlite"), env=env)]
    try:
        cluster: PostgresCluster = request.getfixturevalue("postgres")
    except pytest.skip.Exception:
        pass  # SQLite alone where there is no PostgreSQL
    else:
        url = {"TUNIXRT_DATABASE_URL": cluster.new_database()}
        servers.append(start_server(tmp_path_factory.mktemp("fuzz-pg"), env=env | url))
    yield servers
    for server in servers:
        server.stop()


def _invoke(
    channel: grpc.Channel, method: _descriptor.MethodDescriptor, payloads: list[bytes]
) -> grpc.StatusCode:
    path = f"/{method.containing_service.full_name}/{method.name}"
    identity: Callable[[bytes], bytes] = lambda b: b  # noqa: E731
    try:
        if method.client_streaming:
            call = channel.stream_unary(path, identity, identity)
            call(iter(payloads), timeout=10)
        elif method.server_streaming:
            stream = channel.unary_stream(path, identity, identity)(payloads[0], timeout=10)
            for n, _ in enumerate(stream):
                if n >= 3:
                    stream.cancel()
                    break
        else:
            channel.unary_unary(path, identity, identity)(payloads[0], timeout=10)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def _answered(
    servers: list[ServerProcess],
    channels: list[grpc.Channel],
    method: _descriptor.MethodDescriptor,
    payloads: list[bytes],
) -> None:
    codes = [_invoke(channel, method, payloads) for channel in channels]
    for server, code in zip(servers, codes, strict=True):
        assert code not in SERVER_FAULTS, (
            f"{method.full_name} answered {code}; server log tail:\n{server.log()[-2000:]}"
        )
    assert len(set(codes)) == 1, f"{method.full_name}: SQLite/PostgreSQL answered {codes}"


@pytest.mark.parametrize("method", METHODS, ids=[m.full_name for m in METHODS])
def test_every_rpc_answers_random_requests_properly(
    fuzzed: list[ServerProcess], method: _descriptor.MethodDescriptor
) -> None:
    channels = [grpc.insecure_channel(server.address) for server in fuzzed]
    try:

        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            database=None,
        )
        @given(
            st.lists(messages(method.input_type), min_size=1, max_size=3),
            st.lists(st.binary(max_size=200), min_size=1, max_size=2),
        )
        def check(requests: list[Message], garbage: list[bytes]) -> None:
            _answered(fuzzed, channels, method, [r.SerializeToString() for r in requests])
            _answered(fuzzed, channels, method, garbage)

        check()
        for channel in channels:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert health.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        for channel in channels:
            channel.close()
    assert all("unhandled error" not in server.log() for server in fuzzed)


def test_log_is_clean_after_fuzzing(fuzzed: list[ServerProcess]) -> None:
    for server in fuzzed:
        assert Path(server.log_path).exists() and "Traceback" not in server.log()
