"""TraceService end to end against a real server and a real SQLite file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import orjson
import pytest

from conftest import ServerProcess
from tunixrt import (
    Client,
    InvalidArgument,
    NotFound,
    trace_from_dict,
    trace_to_dict,
)
from tunixrt.v1 import trace_pb2


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """The storage and service suites run against both stores."""
    return str(request.param)


def _trace(**overrides: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "trace_version": "1.0",
        "prompt": "What is 2 + 2?",
        "final_answer": "4",
        "steps": [{"i": 0, "type": "calc", "content": "2 + 2 = 4"}],
        "meta": {"source": "unit", "category": "math"},
    }
    doc.update(overrides)
    return doc


def _line(doc: object) -> bytes:
    return orjson.dumps(doc)


def _count(server: ServerProcess) -> int:
    return server.count("traces")


def test_corpus_imports_and_reads_back_identical(
    server: ServerProcess, client: Client, corpus_lines: list[bytes]
) -> None:
    result = client.import_jsonl(corpus_lines, batch_lines=100)
    assert (result.accepted_count, result.rejected_count, list(result.errors)) == (550, 0, [])
    assert result.accepted_batch_count == 6

    stored = list(client.list_traces(page_size=77))
    assert len(stored) == 550 == len({t.name for t in stored})
    # Newest first: the last batch imported comes back first, each batch in order.
    originals = [orjson.loads(line) for line in corpus_lines]
    by_content = {orjson.dumps(o, option=orjson.OPT_SORT_KEYS): o for o in originals}
    for trace in stored:
        doc = trace_to_dict(trace)
        again = client.get_trace(trace.name)
        assert again == trace
        plain = {k: doc[k] for k in ("trace_version", "prompt", "final_answer", "steps", "meta")}
        assert orjson.dumps(plain, option=orjson.OPT_SORT_KEYS) in by_content


def test_typed_import_matches_jsonl_import(client: Client, corpus_lines: list[bytes]) -> None:
    docs = [orjson.loads(line) for line in corpus_lines[:50]]
    result = client.import_traces(
        [trace_pb2.ImportTracesRequest(traces=[trace_from_dict(d) for d in docs])]
    )
    assert result.accepted_count == 50
    back = [trace_to_dict(t) for t in client.list_traces()]
    for doc, got in zip(reversed(docs), back, strict=True):
        assert {k: got[k] for k in doc} == doc


BAD_TRACES = [
    ("missing prompt", {k: v for k, v in _trace().items() if k != "prompt"}, "prompt"),
    (
        "1,001 steps",
        _trace(steps=[{"i": n, "type": "t", "content": "c"} for n in range(1001)]),
        "steps",
    ),
    (
        "duplicate step i",
        _trace(
            steps=[{"i": 0, "type": "t", "content": "a"}, {"i": 0, "type": "t", "content": "b"}]
        ),
        "steps[1].i",
    ),
    ("50,001-char prompt", _trace(prompt="x" * 50_001), "prompt"),
    ("prompt is a number", _trace(prompt=123), "prompt"),
    ("steps is an object", _trace(steps={"i": 0}), "steps"),
    ("step i is a string", _trace(steps=[{"i": "0", "type": "t", "content": "c"}]), "steps[0].i"),
    ("step i negative", _trace(steps=[{"i": -1, "type": "t", "content": "c"}]), "steps[0].i"),
    ("meta is a list", _trace(meta=[1, 2]), "meta"),
    ("empty final_answer", _trace(final_answer=""), "final_answer"),
    (
        "65-char step type",
        _trace(steps=[{"i": 0, "type": "t" * 65, "content": "c"}]),
        "steps[0].type",
    ),
    (
        "20,001-char step content",
        _trace(steps=[{"i": 0, "type": "t", "content": "c" * 20_001}]),
        "steps[0].content",
    ),
    ("unknown field", _trace(finalanswer="4"), "finalanswer"),
    ("not an object", [1, 2, 3], "trace"),
]


@pytest.mark.parametrize(("label", "doc", "field"), BAD_TRACES, ids=[b[0] for b in BAD_TRACES])
def test_invalid_trace_rejects_whole_batch(
    refusing_server: ServerProcess, refusing_client: Client, label: str, doc: object, field: str
) -> None:
    good = [_line(_trace(prompt=f"good {n}")) for n in range(3)]
    result = refusing_client.import_jsonl([good[0], _line(doc), good[1], good[2]])
    assert result.accepted_count == 0 and result.rejected_count == 4
    assert result.rejected_batch_count == 1
    assert {(e.index, e.field) for e in result.errors} >= {(1, field)}
    assert all(e.index == 1 for e in result.errors), result.errors
    assert _count(refusing_server) == 0, "nothing from a rejected batch may be stored"


@pytest.mark.parametrize(
    ("label", "doc", "field"),
    BAD_TRACES[:4] + BAD_TRACES[9:12],
    ids=[b[0] for b in BAD_TRACES[:4] + BAD_TRACES[9:12]],
)
def test_create_trace_invalid_argument_names_field(
    refusing_server: ServerProcess,
    refusing_client: Client,
    label: str,
    doc: dict[str, object],
    field: str,
) -> None:
    with pytest.raises(InvalidArgument) as err:
        refusing_client.create_trace(trace_from_dict(doc))
    assert err.value.reason == "INVALID_TRACE"
    assert f"trace.{field}" in [v.field for v in err.value.field_violations]
    assert _count(refusing_server) == 0


def test_good_batches_stored_bad_batch_reported(server: ServerProcess, client: Client) -> None:
    lines = [_line(_trace(prompt=f"p{n}")) for n in range(10)]
    lines[7] = b"{not json"
    result = client.import_jsonl(lines, batch_lines=5)
    assert (result.accepted_count, result.rejected_count) == (5, 5)
    assert [(e.index, e.batch_index, e.item_index, e.field) for e in result.errors] == [
        (7, 1, 2, "trace")
    ]
    assert "not valid JSON" in result.errors[0].description
    assert _count(server) == 5


def test_batch_with_both_payloads_is_invalid_argument(client: Client) -> None:
    request = trace_pb2.ImportTracesRequest(
        traces=[trace_from_dict(_trace())], jsonl=_line(_trace())
    )
    with pytest.raises(InvalidArgument) as err:
        client.import_traces([request])
    assert err.value.field_violations[0].field == "requests[0]"


def test_an_empty_batch_is_invalid_and_an_empty_stream_imports_nothing(client: Client) -> None:
    for empty in (trace_pb2.ImportTracesRequest(), trace_pb2.ImportTracesRequest(jsonl=b"\n \n")):
        with pytest.raises(InvalidArgument) as err:
            client.import_traces([empty])
        assert err.value.field_violations[0].field == "requests[0]"
        assert "at least one trace" in err.value.field_violations[0].description
    nothing = client.import_traces([])
    assert (nothing.accepted_count, nothing.rejected_count) == (0, 0)


def test_an_import_stamps_its_source_unless_a_trace_has_its_own(
    server: ServerProcess, client: Client
) -> None:
    own = _trace(meta={"source": "mine", "category": "math"})
    bare = _trace(meta={"category": "math"})
    lines = [_line(own), _line(bare), _line(bare)]
    result = client.import_jsonl(lines, batch_lines=2, source_name="ungar", source_file="x.jsonl")
    assert result.accepted_count == 3 and result.accepted_batch_count == 2
    metas = sorted(
        (dict(t.meta) for t in client.list_traces('category = "math"')),
        key=lambda m: str(m["source"]),
    )
    assert metas == [
        {"source": "mine", "category": "math", "ingest_source_file": "x.jsonl"},
        {"source": "ungar", "category": "math", "ingest_source_file": "x.jsonl"},
        {"source": "ungar", "category": "math", "ingest_source_file": "x.jsonl"},
    ]
    assert len(list(client.list_traces('source = "ungar"'))) == 2  # the indexed column too
    later = [
        trace_pb2.ImportTracesRequest(jsonl=_line(bare)),
        trace_pb2.ImportTracesRequest(jsonl=_line(bare), source="late"),
    ]
    with pytest.raises(InvalidArgument) as err:
        client.import_traces(later)
    assert err.value.field_violations[0].field == "requests[1].source"


def test_request_id_makes_create_idempotent(server: ServerProcess, client: Client) -> None:
    first = client.create_trace(trace_from_dict(_trace()), request_id="req-1")
    again = client.create_trace(trace_from_dict(_trace()), request_id="req-1")
    other = client.create_trace(trace_from_dict(_trace()), request_id="req-2")
    assert first == again and other.name != first.name
    assert _count(server) == 2


def test_get_and_delete(client: Client) -> None:
    created = client.create_trace(trace_from_dict(_trace(steps=[])))
    assert list(created.steps) == []
    bare_id = created.name.split("/")[1]
    assert client.get_trace(bare_id) == created
    client.delete_trace(created.name)
    with pytest.raises(NotFound) as err:
        client.get_trace(created.name)
    assert err.value.reason == "TRACE_NOT_FOUND"
    with pytest.raises(NotFound):
        client.delete_trace(created.name)
    with pytest.raises(InvalidArgument) as bad:
        client.get_trace("traces/../../etc/passwd")
    assert bad.value.field_violations[0].field == "name"


def test_a_basic_view_lists_and_gets_without_the_text(client: Client) -> None:
    """TraceView BASIC: name, version, meta, create_time and step_count; FULL, the
    default, everything (with step_count too); an unknown view is INVALID_ARGUMENT."""
    steps = [{"i": n, "type": "calc", "content": f"step {n}"} for n in range(3)]
    created = client.create_trace(trace_from_dict(_trace(steps=steps, meta={"source": "views"})))
    full = client.get_trace(created.name)
    basic = client.get_trace(created.name, view="BASIC")
    assert full.prompt and len(full.steps) == 3 and full.step_count == 3
    assert (basic.name, basic.step_count, basic.create_time) == (
        full.name,
        3,
        full.create_time,
    )
    assert basic.meta == full.meta and basic.trace_version == full.trace_version
    assert not basic.prompt and not basic.final_answer and not basic.steps
    (listed,) = client.list_traces('source = "views"', view="BASIC")
    assert listed == basic
    (listed_full,) = client.list_traces('source = "views"')
    assert listed_full == full
    with pytest.raises(InvalidArgument) as err:
        client._call(
            client.traces.GetTrace,
            trace_pb2.GetTraceRequest(name=created.name, view=trace_pb2.TraceView.ValueType(9)),
        )
    assert err.value.field_violations[0].field == "view"


def test_filters_run_in_sql(client: Client, corpus_lines: list[bytes]) -> None:
    client.import_jsonl(corpus_lines)
    docs = [orjson.loads(line) for line in corpus_lines]

    def expect(pred: Callable[[Any], bool]) -> int:
        return sum(1 for d in docs if pred(d))

    def count(flt: str) -> int:
        return sum(1 for _ in client.list_traces(flt, page_size=1000))

    assert count('source = "dev-reasoning-v2"') == 550
    assert count('meta.category = "reasoning"') == expect(
        lambda d: d["meta"]["category"] == "reasoning"
    )
    assert count('category = "synthetic" AND steps >= 2') == expect(
        lambda d: d["meta"]["category"] == "synthetic" and len(d["steps"]) >= 2
    )
    assert count("meta.index < 10") == expect(lambda d: d["meta"]["index"] < 10)
    assert count('meta.task_type = "string_reverse"') == expect(
        lambda d: d["meta"].get("task_type") == "string_reverse"
    )
    assert count("steps > 3 AND steps <= 4") == expect(lambda d: 3 < len(d["steps"]) <= 4)
    assert count('create_time > "2000-01-01T00:00:00Z"') == 550
    assert count('create_time < "2000-01-01T00:00:00Z"') == 0
    # An injection attempt is just a string that matches nothing.
    assert count('source = "x\' OR 1=1 --"') == 0
    for bad in (
        "steps >",
        "bogus = 1",
        'steps = "two"',
        "meta.x = 1 OR meta.y = 2",
        'create_time > "yesterday"',
    ):
        with pytest.raises(InvalidArgument) as err:
            count(bad)
        assert err.value.field_violations[0].field == "filter"


def test_pagination(client: Client) -> None:
    client.import_jsonl([_line(_trace(prompt=f"p{n}")) for n in range(25)])
    first = client._call(client.traces.ListTraces, trace_pb2.ListTracesRequest(page_size=10))
    assert len(first.traces) == 10 and first.next_page_token
    assert first.traces[0].prompt == "p24"
    with pytest.raises(InvalidArgument) as err:
        client._call(
            client.traces.ListTraces,
            trace_pb2.ListTracesRequest(page_token=first.next_page_token, filter="steps > 0"),
        )
    assert err.value.field_violations[0].field == "page_token"
    with pytest.raises(InvalidArgument):
        client._call(client.traces.ListTraces, trace_pb2.ListTracesRequest(page_token="garbage!"))
    with pytest.raises(InvalidArgument):
        client._call(client.traces.ListTraces, trace_pb2.ListTracesRequest(page_size=-1))
    default = client._call(client.traces.ListTraces, trace_pb2.ListTracesRequest())
    assert len(default.traces) == 25 and not default.next_page_token
    assert [t.prompt for t in client.list_traces(page_size=7)] == [
        f"p{n}" for n in range(24, -1, -1)
    ]


def test_server_keeps_serving_after_errors(server: ServerProcess, client: Client) -> None:
    channel = grpc.insecure_channel(server.address)
    raw: Any = channel.unary_unary("/tunixrt.v1.TraceService/GetTrace")
    with pytest.raises(grpc.RpcError) as err:
        raw(b"\xff\xff\xff", timeout=5)  # undecodable request bytes
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    channel.close()
    assert client.create_trace(trace_from_dict(_trace())).name


def test_sigterm_shuts_down_gracefully(server: ServerProcess) -> None:
    assert server.stop() == 0
    assert "tunix-rt stopped" in server.log()


def test_batch_create_stores_all_or_nothing_in_one_unary_call(
    server: ServerProcess, client: Client
) -> None:
    lines = [_line(_trace(prompt=f"p{n}", meta={})) + b"\n" for n in range(4)]
    checked = client.batch_create_traces(jsonl=b"".join(lines), validate_only=True)
    assert (checked.created_count, list(checked.names), _count(server)) == (4, [], 0)

    bad = [lines[0], b"\n", b"{not json\n", lines[1], _line(_trace(prompt=""))]
    with pytest.raises(InvalidArgument) as err:
        client.batch_create_traces(jsonl=b"".join(bad), source_name="browser")
    assert err.value.reason == "INVALID_TRACE"
    assert [v.field for v in err.value.field_violations] == ["jsonl[1].trace", "jsonl[3].prompt"]
    assert "nothing was stored" in str(err.value)
    assert _count(server) == 0

    made = client.batch_create_traces(jsonl=b"".join(lines), source_name="browser")
    assert made.created_count == 4 and _count(server) == 4
    first = client.get_trace(made.names[0])
    assert first.prompt == "p0" and first.meta["source"] == "browser"

    typed = client.batch_create_traces([trace_from_dict(_trace(prompt="typed"))])
    assert client.get_trace(typed.names[0]).prompt == "typed"
    with pytest.raises(InvalidArgument) as err:
        client.batch_create_traces([trace_from_dict(_trace())], jsonl=lines[0])
    assert err.value.field_violations[0].field == "traces"
    with pytest.raises(InvalidArgument) as err:
        client.batch_create_traces()
    assert "at least one trace" in err.value.field_violations[0].description
