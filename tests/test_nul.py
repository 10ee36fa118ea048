"""U+0000 (NUL) in any request string: one answer on both backends.

PostgreSQL cannot store it; SQLite can. The rule is to refuse it everywhere as
INVALID_ARGUMENT naming the field, never INTERNAL, and to store nothing of a
batch that carries it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from conftest import ServerProcess
from tunixrt import Client, InvalidArgument, trace_from_dict
from tunixrt.v1 import trace_pb2, training_pb2

NUL = "\x00"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _trace(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "prompt": "What is 2 + 2?",
        "final_answer": "4",
        "steps": [{"i": 0, "type": "calc", "content": "2 + 2 = 4"}],
        "meta": {"source": "nul-test", "category": "arithmetic"},
    }
    doc.update(overrides)
    return doc


PLACES = [
    ("prompt", {"prompt": f"What is{NUL} 2 + 2?"}),
    ("final_answer", {"final_answer": f"4{NUL}"}),
    ("steps[0].content", {"steps": [{"i": 0, "type": "calc", "content": f"2{NUL}"}]}),
    ("steps[0].type", {"steps": [{"i": 0, "type": f"c{NUL}", "content": "2 + 2 = 4"}]}),
    ("meta.source", {"meta": {"source": f"a{NUL}b"}}),
    ("meta.tags[1]", {"meta": {"tags": ["ok", f"b{NUL}"]}}),
    ("meta.deep.k\\u0000", {"meta": {"deep": {f"k{NUL}": 1}}}),
]


def _violation_fields(exc: InvalidArgument) -> list[str]:
    return [v.field for v in exc.field_violations]


@pytest.mark.parametrize(("field", "overrides"), PLACES, ids=[p[0] for p in PLACES])
def test_nul_in_a_trace_is_invalid_argument_on_every_path(
    refusing_server: ServerProcess, refusing_client: Client, field: str, overrides: dict[str, Any]
) -> None:
    doc = _trace(**overrides)
    with pytest.raises(InvalidArgument) as typed:
        refusing_client.create_trace(trace_from_dict(doc))
    assert f"trace.{field}" in _violation_fields(typed.value), typed.value
    assert "U+0000" in str(typed.value)

    # Raw JSONL, as files arrive: the item is rejected, with its batch, and named.
    good = orjson.dumps(_trace()) + b"\n"
    result = refusing_client.import_jsonl([good, orjson.dumps(doc) + b"\n"], batch_lines=10)
    assert (result.accepted_count, result.rejected_count) == (0, 2)
    assert [(e.index, e.field) for e in result.errors] == [(1, field)]

    batch = trace_pb2.ImportTracesRequest(traces=[trace_from_dict(_trace()), trace_from_dict(doc)])
    typed_import = refusing_client.import_traces([batch])
    assert typed_import.accepted_count == 0 and typed_import.errors[0].field == field
    assert refusing_server.count("traces") == 0


def test_literal_backslash_u0000_text_is_fine(client: Client) -> None:
    """Only the character is refused, not text that spells its escape."""
    doc = _trace(prompt="print('\\u0000')", meta={"note": "\\u0000 is NUL"})
    stored = client.create_trace(trace_from_dict(doc))
    assert stored.prompt == "print('\\u0000')"
    assert client.import_jsonl([orjson.dumps(doc) + b"\n"]).accepted_count == 1


def test_nul_in_other_request_fields_is_invalid_argument(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory()
    with server.client() as client:
        client.import_jsonl([orjson.dumps(_trace()) + b"\n"] * 3)
        client.build_dataset("nul", "v1")

        def refused(field: str, call: Callable[[], object]) -> None:
            with pytest.raises(InvalidArgument) as err:
                call()
            assert field in _violation_fields(err.value), err.value
            assert err.value.reason == "NUL_CHARACTER"

        refused("filter", lambda: list(client.list_traces(f'source = "x{NUL}"')))
        refused("filter", lambda: client.build_dataset("nul", "v2", filter=f'source = "{NUL}"'))
        refused(
            "training_run.labels[team]",
            lambda: client.create_training_run("nul-v1", labels={"team": f"a{NUL}"}),
        )
        refused(
            "training_run.hyperparameters.system_instruction",
            lambda: client.create_training_run(
                "nul-v1", hyperparameters={"system_instruction": f"be{NUL}brief"}
            ),
        )
        refused(
            "request_id",
            lambda: client.create_trace(trace_from_dict(_trace()), request_id=f"r{NUL}"),
        )
        run = training_pb2.GenerateRequest(
            name="trainingRuns/00000000-0000-0000-0000-000000000000", prompts=["ok", f"x{NUL}"]
        )
        refused("prompts[1]", lambda: client._call(client.training.Generate, run))
        assert server.count("datasets") == 1 and server.count("training_runs") == 0
        assert "Traceback" not in server.log()


def test_typed_struct_meta_with_nul_key_is_named(
    refusing_server: ServerProcess, refusing_client: Client
) -> None:
    trace = trace_pb2.Trace(prompt="p", final_answer="a")
    trace.meta.update({"ok": 1, f"bad{NUL}key": "v"})
    with pytest.raises(InvalidArgument) as err:
        refusing_client.create_trace(trace)
    assert "trace.meta.bad\\u0000key" in _violation_fields(err.value)
    assert refusing_server.count("traces") == 0
