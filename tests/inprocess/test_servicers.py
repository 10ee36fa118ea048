"""The servicers in process (grpcio-testing, tests/unit/inprocess.py), on a real SQLite
file, behind the real interceptor: error mapping, validation, pagination and auth
without starting a server. (The same behaviour against PostgreSQL and over real
sockets stays in the black-box suites.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest
from google.rpc import error_details_pb2

from inprocess.harness import InProcess, Result
from tunixrt import trace_from_dict
from tunixrt.v1 import dataset_pb2, export_pb2, trace_pb2, training_pb2
from tunixrt_server.api.auth import Authorizer
from tunixrt_server.api.interceptors import ErrorInterceptor
from tunixrt_server.app import build_services
from tunixrt_server.config import Settings
from tunixrt_server.storage.db import create_engine, migrate

TOKENS = [("ana", "writer", "w-secret"), ("rob", "reader", "r-secret")]
WRITER = (("authorization", "Bearer w-secret"),)
READER = (("authorization", "Bearer r-secret"),)


def _start(data_dir: Path, tokens: list[tuple[str, str, str]]) -> InProcess:
    settings = Settings(data_dir=data_dir, max_concurrent_runs=0, probe_runtime=False)
    engine = create_engine(settings.resolved_database_url)
    migrate(engine)
    authorizer = Authorizer(tokens)
    services = build_services(settings, engine, auth_enabled=authorizer.enabled)
    return InProcess(services, ErrorInterceptor(authorizer))


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[InProcess]:
    server = _start(tmp_path, [])
    yield server
    server.close()


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[InProcess]:
    server = _start(tmp_path, TOKENS)
    yield server
    server.close()


def _trace(**overrides: object) -> trace_pb2.Trace:
    doc: dict[str, object] = {"prompt": "What is 2 + 2?", "final_answer": "4", "meta": {}}
    return trace_from_dict({**doc, **overrides})


def _create(rt: InProcess, count: int) -> None:
    for n in range(count):
        request = trace_pb2.CreateTraceRequest(trace=_trace(prompt=f"p{n}"))
        assert rt.call("TraceService", "CreateTrace", request).code == grpc.StatusCode.OK


def _violations(result: Result) -> dict[str, str]:
    return {
        v.field: v.description for v in result.detail(error_details_pb2.BadRequest).field_violations
    }


def _reason(result: Result) -> str:
    return str(result.detail(error_details_pb2.ErrorInfo).reason)


def test_create_get_and_not_found_with_resource_info(rt: InProcess) -> None:
    created = rt.call("TraceService", "CreateTrace", trace_pb2.CreateTraceRequest(trace=_trace()))
    assert created.code == grpc.StatusCode.OK and created.response.name.startswith("traces/")
    got = rt.call("TraceService", "GetTrace", trace_pb2.GetTraceRequest(name=created.response.name))
    assert got.response.prompt == "What is 2 + 2?"

    missing = "traces/00000000-0000-0000-0000-000000000000"
    gone = rt.call("TraceService", "GetTrace", trace_pb2.GetTraceRequest(name=missing))
    assert gone.code == grpc.StatusCode.NOT_FOUND
    assert gone.detail(error_details_pb2.ResourceInfo).resource_name == missing
    assert _reason(gone) == "TRACE_NOT_FOUND"

    bad = rt.call("TraceService", "GetTrace", trace_pb2.GetTraceRequest(name="nope"))
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT and "name" in _violations(bad)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"prompt": ""}, "trace.prompt"),
        ({"final_answer": ""}, "trace.final_answer"),
        ({"prompt": "x" * 50_001}, "trace.prompt"),
        ({"steps": [{"i": 0, "type": "t" * 65, "content": "c"}]}, "trace.steps[0].type"),
    ],
)
def test_create_trace_names_the_bad_field(
    rt: InProcess, overrides: dict[str, object], field: str
) -> None:
    result = rt.call(
        "TraceService", "CreateTrace", trace_pb2.CreateTraceRequest(trace=_trace(**overrides))
    )
    assert result.code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in _violations(result) and _reason(result) == "INVALID_TRACE"


def test_nul_is_refused_by_the_interceptor_naming_the_field(rt: InProcess) -> None:
    result = rt.call(
        "TraceService", "CreateTrace", trace_pb2.CreateTraceRequest(trace=_trace(prompt="a\0b"))
    )
    assert result.code == grpc.StatusCode.INVALID_ARGUMENT
    assert _reason(result) == "NUL_CHARACTER" and "trace.prompt" in _violations(result)


def test_import_stream_rejects_a_bad_batch_whole(rt: InProcess) -> None:
    good = orjson.dumps({"prompt": "p", "final_answer": "a"})
    bad = orjson.dumps({"prompt": "p"})
    result = rt.call(
        "TraceService",
        "ImportTraces",
        [
            trace_pb2.ImportTracesRequest(jsonl=good + b"\n" + good),
            trace_pb2.ImportTracesRequest(jsonl=good + b"\n" + bad),
        ],
    )
    response = result.response
    assert (response.accepted_count, response.rejected_count) == (2, 2)
    assert [(e.index, e.field) for e in response.errors] == [(3, "final_answer")]
    listed = rt.call("TraceService", "ListTraces", trace_pb2.ListTracesRequest())
    assert len(listed.response.traces) == 2


def test_pagination_tokens_are_bound_to_their_query(rt: InProcess) -> None:
    _create(rt, 5)
    prompts, token = [], ""
    while True:
        page = rt.call(
            "TraceService", "ListTraces", trace_pb2.ListTracesRequest(page_size=2, page_token=token)
        ).response
        prompts += [t.prompt for t in page.traces]
        token = page.next_page_token
        if not token:
            break
    assert prompts == ["p4", "p3", "p2", "p1", "p0"]

    first = rt.call("TraceService", "ListTraces", trace_pb2.ListTracesRequest(page_size=2))
    other_query = trace_pb2.ListTracesRequest(
        page_token=first.response.next_page_token, filter="steps > 0"
    )
    for request in (
        other_query,
        trace_pb2.ListTracesRequest(page_token="garbage!"),
        trace_pb2.ListTracesRequest(page_size=-1),
    ):
        refused = rt.call("TraceService", "ListTraces", request)
        assert refused.code == grpc.StatusCode.INVALID_ARGUMENT, request


def test_streaming_export_and_its_errors(rt: InProcess) -> None:
    _create(rt, 3)
    rt.call(
        "DatasetService",
        "BuildDataset",
        dataset_pb2.BuildDatasetRequest(dataset_name="d", version="v1"),
    )
    export = rt.call(
        "ExportService", "ExportDataset", export_pb2.ExportDatasetRequest(dataset="d-v1")
    )
    assert export.code == grpc.StatusCode.OK
    chunks = b"".join(m.chunk.data for m in export.responses if m.HasField("chunk"))
    assert chunks.count(b"\n") == 3 and export.responses[-1].HasField("summary")

    missing = rt.call(
        "ExportService", "ExportDataset", export_pb2.ExportDatasetRequest(dataset="x-v9")
    )
    assert missing.code == grpc.StatusCode.NOT_FOUND and not missing.responses


def test_training_requests_are_validated_before_anything_is_queued(rt: InProcess) -> None:
    def create(dataset: str, **hyperparameters: Any) -> Result:
        run = training_pb2.TrainingRun(
            dataset=dataset, hyperparameters=training_pb2.Hyperparameters(**hyperparameters)
        )
        request = training_pb2.CreateTrainingRunRequest(training_run=run)
        return rt.call("TrainingService", "CreateTrainingRun", request)

    assert create("datasets/none-v1").code == grpc.StatusCode.NOT_FOUND
    rt.call("TraceService", "CreateTrace", trace_pb2.CreateTraceRequest(trace=_trace()))
    rt.call(
        "DatasetService",
        "BuildDataset",
        dataset_pb2.BuildDatasetRequest(dataset_name="d", version="v1"),
    )
    too_big = create("datasets/d-v1", batch_size=100_000)
    assert too_big.code == grpc.StatusCode.INVALID_ARGUMENT
    assert any(field.endswith("batch_size") for field in _violations(too_big))
    listed = rt.call("TrainingService", "ListTrainingRuns", training_pb2.ListTrainingRunsRequest())
    assert not listed.response.training_runs
    queued = create("datasets/d-v1", max_steps=5)
    assert queued.code == grpc.StatusCode.OK
    assert queued.response.state == training_pb2.TRAINING_RUN_STATE_QUEUED


def test_auth_roles(guarded: InProcess) -> None:
    create = trace_pb2.CreateTraceRequest(trace=_trace())
    anonymous = guarded.call("TraceService", "CreateTrace", create)
    assert (
        anonymous.code == grpc.StatusCode.UNAUTHENTICATED and _reason(anonymous) == "MISSING_TOKEN"
    )
    forged = guarded.call(
        "TraceService", "CreateTrace", create, metadata=(("authorization", "Bearer nope"),)
    )
    assert forged.code == grpc.StatusCode.UNAUTHENTICATED and _reason(forged) == "UNKNOWN_TOKEN"
    reader = guarded.call("TraceService", "CreateTrace", create, metadata=READER)
    assert reader.code == grpc.StatusCode.PERMISSION_DENIED
    assert _reason(reader) == "WRITER_ROLE_REQUIRED"
    assert (
        guarded.call("TraceService", "CreateTrace", create, metadata=WRITER).code
        == grpc.StatusCode.OK
    )
    listed = guarded.call(
        "TraceService", "ListTraces", trace_pb2.ListTracesRequest(), metadata=READER
    )
    assert len(listed.response.traces) == 1
