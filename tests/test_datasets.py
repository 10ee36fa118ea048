"""DatasetService and ExportService end to end on the real corpus."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from conftest import ServerProcess
from tunixrt import (
    AlreadyExists,
    Client,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    TunixRtError,
)
from tunixrt.v1 import dataset_pb2


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """The storage and service suites run against both stores."""
    return str(request.param)


def reference_sft(doc: dict[str, Any], system: str = "") -> str:
    """docs/contract.md's tunix_sft rendering, written out independently of the server."""
    user = f"{system}\n\n{doc['prompt']}" if system else doc["prompt"]
    if doc["steps"]:
        body = "Reasoning:\n" + "".join(
            f"{n}. {s['content']}\n" for n, s in enumerate(doc["steps"], 1)
        )
        model = f"{body}Answer: {doc['final_answer']}"
    else:
        model = f"Answer: {doc['final_answer']}"
    return f"<start_of_turn>user\n{user}<end_of_turn>\n<start_of_turn>model\n{model}<end_of_turn>"


def export_bytes(client: Client, name: str, **kwargs: Any) -> tuple[bytes, Any]:
    data = b""
    summary = None
    for message in client.export_chunks(name, **kwargs):
        if message.HasField("summary"):
            summary = message.summary
        else:
            data += message.chunk.data
    return data, summary


@pytest.fixture
def loaded(client: Client, corpus_lines: list[bytes]) -> Client:
    assert client.import_jsonl(corpus_lines).accepted_count == 550
    return client


def test_stratified_build_is_deterministic_and_exports_identical_bytes(loaded: Client) -> None:
    first = loaded.build_dataset(
        "dev", "v1", strategy="STRATIFIED", stratify_by="category", eval_fraction=0.1, seed=7
    )
    again = loaded.build_dataset(
        "dev", "v1-again", strategy="STRATIFIED", stratify_by="category", eval_fraction=0.1, seed=7
    )
    assert first.dataset_key == "dev-v1" and first.name == "datasets/dev-v1"
    assert first.build_id != again.build_id
    ids = [(i.trace_id, i.split) for i in loaded.get_dataset("dev-v1", full=True).items]
    assert ids == [
        (i.trace_id, i.split) for i in loaded.get_dataset("dev-v1-again", full=True).items
    ]
    assert len(ids) == 550 == first.stats.trace_count
    a, summary_a = export_bytes(loaded, "dev-v1", format="tunix_sft")
    b, _ = export_bytes(loaded, "datasets/dev-v1-again", format="tunix_sft")
    assert (
        a == b and summary_a.sha256 == hashlib.sha256(a).hexdigest() and summary_a.row_count == 550
    )

    stats = first.stats
    categories = Counter(
        orjson.loads(x)["meta"]["category"] for x in export_bytes(loaded, "dev-v1")[0].splitlines()
    )
    assert dict(stats.category_counts) == dict(categories)
    assert dict(stats.source_counts) == {"dev-reasoning-v2": 550}
    # The eval split is 10% of each category.
    evals = Counter(
        orjson.loads(x)["meta"]["category"]
        for x in export_bytes(loaded, "dev-v1", split="EVAL")[0].splitlines()
    )
    assert dict(evals) == {k: round(v * 0.1) for k, v in categories.items()}
    assert stats.eval_count == sum(evals.values()) and stats.train_count == 550 - stats.eval_count
    assert stats.min_steps >= 1 and stats.max_steps >= stats.avg_steps >= stats.min_steps


def test_stratified_balances_strata(loaded: Client) -> None:
    ds = loaded.build_dataset(
        "bal", "v1", strategy="STRATIFIED", stratify_by="meta.category", limit=100
    )
    available = Counter(t.meta["category"] for t in loaded.list_traces(page_size=1000))
    got = dict(ds.stats.category_counts)
    assert ds.stats.trace_count == 100
    # Small strata are taken whole; the rest share the remainder within one.
    full = {k for k, v in got.items() if v == available[k]}
    rest = [v for k, v in got.items() if k not in full]
    assert rest and max(rest) - min(rest) <= 1 and all(got[k] <= min(rest) for k in full)


def test_random_is_seeded_and_latest_is_newest(loaded: Client) -> None:
    r1 = loaded.build_dataset("r", "a", strategy="RANDOM", seed=1, limit=50)
    r2 = loaded.build_dataset("r", "b", strategy="RANDOM", seed=1, limit=50)
    r3 = loaded.build_dataset("r", "c", strategy="RANDOM", seed=2, limit=50)

    def ids(ds: dataset_pb2.Dataset) -> list[str]:
        return [i.trace_id for i in loaded.list_dataset_items(ds.name, page_size=7)]

    assert ids(r1) == ids(r2) != ids(r3)
    latest = loaded.build_dataset("l", "a", limit=5, filter='category = "reasoning"')
    newest = [
        t.name.split("/")[1] for t in loaded.list_traces('category = "reasoning"', page_size=5)
    ][:5]
    assert ids(latest) == newest


def test_build_errors(loaded: Client) -> None:
    loaded.build_dataset("dup", "v1", limit=3)
    with pytest.raises(AlreadyExists) as exists:
        loaded.build_dataset("dup", "v1", limit=3)
    assert exists.value.reason == "DATASET_ALREADY_EXISTS"
    with pytest.raises(FailedPrecondition) as empty:
        loaded.build_dataset("none", "v1", filter='source = "nowhere"')
    assert "no traces match" in empty.value.message
    cases: list[tuple[dict[str, Any], str]] = [
        ({"dataset_name": "../etc", "version": "v1"}, "dataset_name"),
        ({"dataset_name": "Dev", "version": "v1"}, "dataset_name"),
        ({"dataset_name": "dev", "version": "v1/../../x"}, "version"),
        ({"dataset_name": "dev", "version": ""}, "version"),
        ({"dataset_name": "dev", "version": "v9", "eval_fraction": 1.0}, "eval_fraction"),
        ({"dataset_name": "dev", "version": "v9", "strategy": "STRATIFIED"}, "stratify_by"),
        ({"dataset_name": "dev", "version": "v9", "limit": 10_000_001}, "limit"),
        ({"dataset_name": "dev", "version": "v9", "filter": "steps ="}, "filter"),
    ]
    for kwargs, field in cases:
        with pytest.raises(InvalidArgument) as err:
            loaded.build_dataset(**kwargs)
        assert err.value.field_violations[0].field == field, kwargs


def test_trace_used_by_dataset_cannot_be_deleted(loaded: Client) -> None:
    ds = loaded.build_dataset("keep", "v1", limit=5)
    victim = next(iter(loaded.get_dataset(ds.name, full=True).items)).trace_id
    with pytest.raises(FailedPrecondition) as err:
        loaded.delete_trace(victim)
    assert err.value.reason == "TRACE_IN_USE" and "keep-v1" in err.value.message
    before = export_bytes(loaded, ds.name)[0]
    assert loaded.get_trace(victim)
    loaded.delete_dataset(ds.name)
    with pytest.raises(NotFound):
        loaded.get_dataset(ds.name)
    loaded.delete_trace(victim)  # free once no dataset holds it
    assert len(before.splitlines()) == 5


def test_tunix_sft_matches_reference_byte_for_byte(
    loaded: Client, corpus_lines: list[bytes]
) -> None:
    loaded.build_dataset("sft", "v1")
    by_prompt_answer = {}
    for line in corpus_lines:
        doc = orjson.loads(line)
        by_prompt_answer[(doc["prompt"], doc["final_answer"], len(doc["steps"]))] = doc
    system = "You are a careful reasoner. Show your steps."
    rows = [
        orjson.loads(x) for x in export_bytes(loaded, "sft-v1", format="tunix_sft")[0].splitlines()
    ]
    sys_rows = [
        orjson.loads(x)
        for x in export_bytes(loaded, "sft-v1", format="tunix_sft", system_instruction=system)[
            0
        ].splitlines()
    ]
    traces = [orjson.loads(x) for x in export_bytes(loaded, "sft-v1")[0].splitlines()]
    assert len(rows) == len(traces) == 550
    for row, sys_row, trace in zip(rows, sys_rows, traces, strict=True):
        original = by_prompt_answer[(trace["prompt"], trace["final_answer"], len(trace["steps"]))]
        assert row == {"id": trace["id"], "text": reference_sft(original)}
        assert sys_row["text"] == reference_sft(original, system)
        assert not row["text"].endswith("\n") and not row["text"].startswith("<bos>")


def test_formats_and_no_steps(client: Client) -> None:
    client.import_jsonl(
        [
            orjson.dumps(
                {"prompt": "Capital of France?", "final_answer": "Paris", "steps": [], "meta": {}}
            )
        ]
    )
    client.build_dataset("fmt", "v1")
    (sft,) = [
        orjson.loads(x) for x in export_bytes(client, "fmt-v1", format="tunix_sft")[0].splitlines()
    ]
    assert sft["text"] == (
        "<start_of_turn>user\nCapital of France?<end_of_turn>\n"
        "<start_of_turn>model\nAnswer: Paris<end_of_turn>"
    )
    (pc,) = [
        orjson.loads(x)
        for x in export_bytes(client, "fmt-v1", format="prompt_completion")[0].splitlines()
    ]
    assert (
        pc["prompt"] + pc["completion"] == sft["text"]
        and pc["completion"] == "Answer: Paris<end_of_turn>"
    )
    (msg,) = [
        orjson.loads(x)
        for x in export_bytes(client, "fmt-v1", format="messages", system_instruction="Be brief.")[
            0
        ].splitlines()
    ]
    assert msg["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Answer: Paris"},
    ]


def test_export_chunking_and_splits(loaded: Client, tmp_path: Path) -> None:
    ds = loaded.build_dataset("chunks", "v1", eval_fraction=0.2, seed=3)
    messages = list(loaded.export_chunks(ds.name, format="messages", rows_per_chunk=100))
    assert [m.chunk.row_count for m in messages[:-1]] == [100] * 5 + [50]
    assert messages[-1].summary.row_count == 550
    train = loaded.export_to_file(
        ds.name, tmp_path / "train.jsonl", split="TRAIN", format="prompt_completion"
    )
    evals = loaded.export_to_file(
        ds.name, tmp_path / "eval.jsonl", split="EVAL", format="prompt_completion"
    )
    assert (
        (train.row_count, evals.row_count)
        == (ds.stats.train_count, ds.stats.eval_count)
        == (440, 110)
    )
    assert hashlib.sha256((tmp_path / "train.jsonl").read_bytes()).hexdigest() == train.sha256
    with pytest.raises(InvalidArgument):
        list(loaded.export_chunks(ds.name, rows_per_chunk=5000))
    with pytest.raises(NotFound):
        list(loaded.export_chunks("missing-v1"))


def test_export_cancel_leaves_server_healthy(server: ServerProcess, loaded: Client) -> None:
    ds = loaded.build_dataset("cancel", "v1")
    stream = loaded.export_chunks(ds.name, rows_per_chunk=1)
    next(stream)
    stream.close()  # cancels the call
    with pytest.raises(DeadlineExceeded):
        list(loaded.export_chunks(ds.name, timeout=0.001))
    assert server.proc.poll() is None
    assert loaded.get_dataset(ds.name).stats.trace_count == 550


def test_dataset_listing_and_full_view(loaded: Client) -> None:
    for n in range(3):
        loaded.build_dataset("list", f"v{n}", limit=10)
    names = [d.name for d in loaded.list_datasets(page_size=2)]
    assert names == ["datasets/list-v2", "datasets/list-v1", "datasets/list-v0"]
    full = loaded.get_dataset("list-v0", full=True)
    assert len(full.items) == 10 and not loaded.get_dataset("list-v0").items


def test_training_manifest_yaml(loaded: Client) -> None:
    loaded.build_dataset("man", "v1", eval_fraction=0.1)
    doc = yaml.safe_load(
        loaded.get_training_manifest(
            "man-v1", hyperparameters={"learning_rate": "1e-3", "max_steps": "300"}
        )
    )
    assert doc["dataset"]["key"] == "man-v1" and doc["training"]["learning_rate"] == 1e-3
    assert doc["training"]["max_steps"] == 300 and doc["model"]["preset"] == "tiny-gemma3"
    with pytest.raises(InvalidArgument) as err:
        loaded.get_training_manifest("man-v1", hyperparameters={"learning_rat": "1"})
    assert err.value.field_violations[0].field == "hyperparameters[learning_rat]"


def test_training_manifest_in_the_tunix_rt_shape(loaded: Client) -> None:
    ds = loaded.build_dataset("rtman", "v1", eval_fraction=0.1)
    doc = yaml.safe_load(
        loaded.get_training_manifest(
            "rtman-v1",
            style="TUNIX_RT",
            hyperparameters={"learning_rate": "2e-3", "num_epochs": "3", "batch_size": "8"},
        )
    )
    assert list(doc) == ["version", "runner", "mode", "model", "dataset", "training", "output"]
    assert (doc["version"], doc["runner"], doc["mode"]) == ("1.0", "tunix", "sft")
    assert doc["model"] == {"model_id": "tiny-gemma3"}
    assert doc["dataset"] == {"format": "tunix_sft", "path": "./datasets/rtman-v1.jsonl"}
    assert doc["training"] == {
        "learning_rate": 2e-3,
        "num_epochs": 3,
        "batch_size": 8,
        "max_seq_length": 1024,  # the preset's context; the run picks within it
        "device": "auto",
    }
    assert doc["output"] == {"output_dir": "./output/rtman-v1"}
    # max_steps alone: the passes it makes, rounded up.
    steps_only = yaml.safe_load(
        loaded.get_training_manifest(
            "rtman-v1", style="TUNIX_RT", hyperparameters={"max_steps": "100"}
        )
    )
    assert steps_only["training"]["num_epochs"] == -(-100 * 8 // ds.stats.train_count)
    for model, hint in (("google/gemma-2b-it", "Gemma 1 or 2"), ("gpt-9", "tiny-gemma3")):
        with pytest.raises(InvalidArgument) as err:
            loaded.get_training_manifest("rtman-v1", model=model, style="TUNIX_RT")
        assert err.value.field_violations[0].field == "model"
        assert hint in err.value.message and "local_path" in err.value.message


def tunix_rt_rows(trace: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The tunix-rt project's own trace and tunix_sft rows for an exported trace,
    written out from its shape, independently of the server."""
    created = datetime.fromisoformat(trace["create_time"].replace("Z", "+00:00")).isoformat()
    steps = [s["content"] for s in trace["steps"]]
    reasoning = "".join(f"{n}. {c}\n" for n, c in enumerate(steps, 1))
    model = (f"Reasoning:\n{reasoning}" if steps else "") + f"Answer: {trace['final_answer']}"
    rendered = (
        f"<start_of_turn>user\n{trace['prompt']}<end_of_turn>\n"
        f"<start_of_turn>model\n{model}<end_of_turn>"
    )
    base = {"created_at": created, "trace_version": trace["trace_version"]}
    as_trace = {
        "id": trace["id"],
        "prompts": trace["prompt"],
        "trace_steps": steps,
        "final_answer": trace["final_answer"],
        "metadata": {**base, **trace["meta"]},
    }
    as_sft = {
        "id": trace["id"],
        "prompts": rendered,
        "final_answer": trace["final_answer"],
        "metadata": {**base, "format": "tunix_sft", **trace["meta"]},
    }
    return as_trace, as_sft


def test_tunix_rt_rows_read_unchanged_by_its_scripts(loaded: Client) -> None:
    loaded.build_dataset("dev", "v1")
    traces = [orjson.loads(x) for x in export_bytes(loaded, "dev-v1")[0].splitlines()]
    exported = {
        fmt: [orjson.loads(x) for x in export_bytes(loaded, "dev-v1", format=fmt)[0].splitlines()]
        for fmt in ("tunix_rt_trace", "tunix_rt_sft")
    }
    assert len(traces) == len(exported["tunix_rt_trace"]) == 550
    for trace, as_trace, as_sft in zip(
        traces, exported["tunix_rt_trace"], exported["tunix_rt_sft"], strict=True
    ):
        assert (as_trace, as_sft) == tunix_rt_rows(trace)
        assert list(as_trace) == ["id", "prompts", "trace_steps", "final_answer", "metadata"]


def test_training_example_rows_are_tunix_rts_byte_for_byte(loaded: Client) -> None:
    """tunix-rt's TrainingExample rows, written out independently: the prompt with the
    instruction appended, the numbered reasoning, metadata led by source_trace_id.
    The id is the one field chosen here (tunix-rt's is random): a UUID of the trace's,
    so two exports are byte-identical."""
    loaded.build_dataset("examples", "v1")
    traces = [orjson.loads(x) for x in export_bytes(loaded, "examples-v1")[0].splitlines()]
    first, _ = export_bytes(loaded, "examples-v1", format="training_example")
    again, _ = export_bytes(loaded, "examples-v1", format="training_example")
    assert first == again
    rows = [orjson.loads(x) for x in first.splitlines()]
    assert len(rows) == len(traces) == 550
    for trace, row in zip(traces, rows, strict=True):
        lines = [f"{n}. {s['content']}" for n, s in enumerate(trace["steps"], 1)]
        response = "\n".join(
            [*(["Reasoning:", *lines] if lines else []), f"Answer: {trace['final_answer']}"]
        )
        created = datetime.fromisoformat(trace["create_time"].replace("Z", "+00:00")).isoformat()
        assert row == {
            "id": row["id"],
            "prompt": f"{trace['prompt']}\n\nPlease show your reasoning steps.",
            "response": response,
            "metadata": {
                "source_trace_id": trace["id"],
                "created_at": created,
                "trace_version": trace["trace_version"],
                **trace["meta"],
            },
        }
        assert list(row) == ["id", "prompt", "response", "metadata"]
        assert list(row["metadata"])[:3] == ["source_trace_id", "created_at", "trace_version"]
        assert uuid.UUID(row["id"]).version == 5
    assert len({r["id"] for r in rows}) == 550


def test_export_listed_traces_in_the_order_given(loaded: Client, tmp_path: Path) -> None:
    names = [t.name for t in itertools.islice(loaded.list_traces(page_size=10), 4)]
    order = [names[3], names[0], names[3], names[1]]  # a repeat is exported again
    messages = list(loaded.export_traces(order, format="trace", rows_per_chunk=2))
    data = b"".join(m.chunk.data for m in messages[:-1])
    assert [orjson.loads(x)["id"] for x in data.splitlines()] == [
        n.removeprefix("traces/") for n in order
    ]
    summary = messages[-1].summary
    assert summary.row_count == 4 and summary.sha256 == hashlib.sha256(data).hexdigest()
    written = loaded.export_traces_to_file(order, tmp_path / "ids.jsonl", format="tunix_sft")
    assert written.row_count == 4 and (tmp_path / "ids.jsonl").read_bytes().count(b"\n") == 4

    unknown = [f"traces/{uuid.UUID(int=n)}" for n in (7, 8)]
    with pytest.raises(NotFound) as err:
        list(loaded.export_traces([names[0], *unknown]))
    assert all(u in str(err.value) for u in unknown) and "2 trace(s)" in str(err.value)
    with pytest.raises(InvalidArgument) as bad:
        list(loaded.export_traces([names[0], "traces/nope"]))
    assert [v.field for v in bad.value.field_violations] == ["names[1]"]


def test_export_traces_by_filter_newest_first(loaded: Client, tmp_path: Path) -> None:
    newest = [t.name for t in loaded.list_traces('category = "reasoning"', view="BASIC")]
    messages = list(loaded.export_traces(filter='category = "reasoning"', limit=5))
    data = b"".join(m.chunk.data for m in messages[:-1])
    assert [orjson.loads(x)["id"] for x in data.splitlines()] == [
        n.removeprefix("traces/") for n in newest[:5]
    ]
    assert messages[-1].summary.row_count == messages[-1].summary.expected_row_count == 5
    written = loaded.export_traces_to_file(
        None, tmp_path / "reasoning.jsonl", filter='category = "reasoning"', format="tunix_sft"
    )
    assert written.row_count == len(newest)
    (empty,) = list(loaded.export_traces(filter='source = "nowhere"'))
    assert empty.summary.row_count == 0 and empty.summary.sha256 == hashlib.sha256().hexdigest()
    for kwargs, field in (
        ({"names": newest[:1], "filter": 'category = "x"'}, "filter"),
        ({"filter": 'category = "x"', "limit": 10_001}, "limit"),
        ({"filter": "nonsense"}, "filter"),
        ({}, "names"),
    ):
        with pytest.raises(InvalidArgument) as err:
            list(loaded.export_traces(**kwargs))
        assert err.value.field_violations[0].field == field, kwargs


def test_an_interrupted_export_resumes_and_is_verified_whole(
    loaded: Client, tmp_path: Path
) -> None:
    loaded.build_dataset("dev", "v1")
    full = tmp_path / "full.jsonl"
    loaded.export_to_file("dev-v1", full, format="messages")

    # Cut the stream mid-way: three chunks, and half of the fourth (a cut row).
    out = tmp_path / "cut.jsonl"
    part = out.with_name("cut.jsonl.part")
    with loaded.export_chunks("dev-v1", format="messages", rows_per_chunk=50) as stream:
        chunks = [next(stream).chunk.data for _ in range(4)]
    part.write_bytes(b"".join(chunks[:3]) + chunks[3][: len(chunks[3]) // 2])
    summary = loaded.export_to_file("dev-v1", out, format="messages")
    assert out.read_bytes() == full.read_bytes() and not part.exists()
    assert summary.row_count == 550

    # The server skips to start_row; its summary is the whole export's.
    rest = list(loaded.export_chunks("dev-v1", format="messages", start_row=500))
    assert sum(m.chunk.row_count for m in rest[:-1]) == 50
    assert (rest[-1].summary.row_count, rest[-1].summary.sha256) == (550, summary.sha256)

    # A .part left by another export fails the whole-file check and is removed.
    other = tmp_path / "other.jsonl"
    other.with_name("other.jsonl.part").write_bytes(b'{"not": "this export"}\n')
    with pytest.raises(TunixRtError, match="checksum"):
        loaded.export_to_file("dev-v1", other, format="messages")
    assert not other.with_name("other.jsonl.part").exists() and not other.exists()
    loaded.export_to_file("dev-v1", other, format="messages")
    assert other.read_bytes() == full.read_bytes()
