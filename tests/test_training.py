"""TrainingService end to end: real server, real worker processes, real Tunix on CPU."""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest

from conftest import COMPILE_CACHE, TRACES_JSONL, ServerProcess, start_server
from tunixrt import Client, FailedPrecondition, InvalidArgument, NotFound
from tunixrt.monitor import follow, save_loss_plot
from tunixrt.v1 import training_pb2

# Small and quick: every mechanism, little arithmetic. No evaluation unless a test is
# about it (EVALS): each one costs an eval-loss pass and a decode, compiled per run.
QUICK = {
    "max_seq_len": 128,
    "eval_every_steps": -1,
    "checkpoint_every_steps": 10,
    "warmup_steps": 5,
}
# Exact match on 4 examples (the default 64 decode for ~25 s per eval on 2 busy cores).
EVALS = {"eval_every_steps": 10, "eval_examples": 4}
RUNNING = training_pb2.TRAINING_RUN_STATE_RUNNING
SUCCEEDED = training_pb2.TRAINING_RUN_STATE_SUCCEEDED
FAILED = training_pb2.TRAINING_RUN_STATE_FAILED
CANCELLED = training_pb2.TRAINING_RUN_STATE_CANCELLED
QUEUED = training_pb2.TRAINING_RUN_STATE_QUEUED


@pytest.fixture(scope="module")
def trainer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module, with the corpus imported and datasets/dev-v1 built."""
    server = start_server(tmp_path_factory.mktemp("training"))
    with server.client() as client:
        client.import_jsonl(TRACES_JSONL)
        client.build_dataset(
            "dev", "v1", strategy="STRATIFIED", stratify_by="category", eval_fraction=0.1, seed=1
        )
    yield server
    server.stop()


@pytest.fixture
def client(trainer: ServerProcess) -> Iterator[Client]:
    with trainer.client() as c:
        yield c


def start(client: Client, **hp: Any) -> training_pb2.TrainingRun:
    return client.create_training_run("datasets/dev-v1", hyperparameters={**QUICK, **hp})


def kind(event: training_pb2.TrainingEvent) -> str:
    return event.WhichOneof("event") or ""


def wait_for_step(client: Client, name: str, step: int, after_sequence: int = 0) -> None:
    for event in client.watch_training_run(name, after_sequence=after_sequence):
        if event.step >= step and kind(event) == "step_metrics":
            return
    raise AssertionError(f"run ended before step {step}")


def worker_of(server: ServerProcess) -> psutil.Process:
    for _ in range(100):
        for child in psutil.Process(server.proc.pid).children():
            if "train" in child.cmdline():
                return child
        time.sleep(0.1)
    raise AssertionError("no training worker running")


def check_contiguous(events: list[training_pb2.TrainingEvent], first_step: int = 1) -> list[int]:
    assert [e.sequence for e in events] == list(range(events[0].sequence, events[-1].sequence + 1))
    steps = [e.step for e in events if kind(e) == "step_metrics"]
    assert steps == list(range(first_step, first_step + len(steps)))
    return steps


def test_run_streams_to_late_and_concurrent_watchers(
    client: Client, trainer: ServerProcess, tmp_path: Path
) -> None:
    run = start(client, max_steps=40, **EVALS)
    assert run.state in (QUEUED, RUNNING) and run.name.startswith("trainingRuns/")
    assert run.hyperparameters.batch_size == 8 and run.model.preset == "tiny-gemma3"
    wait_for_step(client, run.name, 15)

    # Ten watchers join late, at once; each must see the same full history, then live.
    results: list[list[training_pb2.TrainingEvent]] = [[] for _ in range(10)]
    lags: list[float] = []

    def watch(slot: int) -> None:
        with trainer.client() as own:
            for event in own.watch_training_run(run.name):
                if kind(event) == "step_metrics" and event.step > 20:
                    lags.append(time.time() - event.time.ToMicroseconds() / 1e6)
                results[slot].append(event)

    threads = [threading.Thread(target=watch, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    first = [e.SerializeToString() for e in results[0]]
    assert all([e.SerializeToString() for e in r] == first for r in results[1:])

    events = results[0]
    assert events[0].sequence == 1 and kind(events[0]) == "state_change"
    assert check_contiguous(events) == list(range(1, 41))
    assert [kind(e) for e in events[-2:]] == ["summary", "state_change"]
    assert events[-1].state_change.state == SUCCEEDED
    assert sum(kind(e) == "eval_metrics" for e in events) == 5  # steps 0, 10, 20, 30, 40
    assert {e.step for e in events if kind(e) == "checkpoint_saved"} >= {10, 20, 30, 40}
    lags.sort()
    assert lags and lags[len(lags) // 2] < 0.2, lags  # live events reach watchers at once
    history = follow(events, show=False)
    assert len(history.train) == 40 and history.final_state == "TRAINING_RUN_STATE_SUCCEEDED"
    png = save_loss_plot(history, tmp_path / "loss.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    done = client.get_training_run(run.name)
    m = done.metrics
    assert done.state == SUCCEEDED and done.checkpoint_step == 40 and m.step == 40
    assert m.train_loss < m.initial_train_loss - 1.0 and m.eval_loss < m.initial_eval_loss
    assert m.seconds_per_step > 0 and m.tokens_per_second > 0
    assert done.end_time.ToMicroseconds() >= done.start_time.ToMicroseconds() > 0

    # since_step / after_sequence pick up exactly where asked.
    tail = list(client.watch_training_run(run.name, since_step=30))
    assert check_contiguous([e for e in tail if e.step >= 30], first_step=30)[0] == 30
    resumed = list(client.watch_training_run(run.name, after_sequence=events[-3].sequence))
    assert [e.sequence for e in resumed] == [e.sequence for e in events[-2:]]

    generated = client.generate(run.name, ["What is 2 + 2?", "Name a colour."], max_new_tokens=24)
    assert generated.step == 40 and len(generated.generations) == 2
    assert all(g.prompt and isinstance(g.text, str) for g in generated.generations)

    evaluation = client.evaluate_run(run.name, max_examples=12, max_new_tokens=16)
    assert evaluation.example_count == 12 and evaluation.step == 40
    assert sum(c.example_count for c in evaluation.per_category.values()) == 12
    assert 0 <= evaluation.accuracy <= 1 and evaluation.samples
    stored = client.get_training_run(run.name).evaluations
    assert len(stored) == 1 and stored[0].example_count == 12


def test_cancel_then_resume_from_checkpoint(client: Client) -> None:
    run = start(client, max_steps=1000, checkpoint_every_steps=5)
    wait_for_step(client, run.name, 8)
    assert client.cancel_training_run(run.name).state in (RUNNING, CANCELLED)
    began = time.monotonic()
    events = list(client.watch_training_run(run.name))
    assert time.monotonic() - began < 15  # the worker stops within seconds
    cancelled = client.get_training_run(run.name)
    assert cancelled.state == CANCELLED and "checkpoint" in cancelled.state_message
    ckpt = cancelled.checkpoint_step
    assert ckpt >= 8 and events[-1].state_change.state == CANCELLED
    with pytest.raises(FailedPrecondition):
        client.cancel_training_run(run.name)

    assert client.resume_training_run(run.name).state == QUEUED
    with pytest.raises(FailedPrecondition, match="unfinished training runs"):
        client.delete_dataset("datasets/dev-v1")
    wait_for_step(client, run.name, ckpt + 3, after_sequence=events[-1].sequence)
    client.cancel_training_run(run.name)
    after = list(client.watch_training_run(run.name, after_sequence=events[-1].sequence))
    steps = [e.step for e in after if kind(e) == "step_metrics"]
    assert steps[0] == ckpt + 1, "resume starts right after the checkpoint"
    assert after[-1].state_change.state == CANCELLED
    assert any(COMPILE_CACHE.iterdir()), "workers share compiles"


def test_killed_worker_fails_the_run_and_server_restart_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path / "data")
    try:
        with server.client() as client:
            client.import_jsonl(TRACES_JSONL)
            client.build_dataset("dev", "v1", eval_fraction=0.1)
            run = start(client, max_steps=1000)
            wait_for_step(client, run.name, 3)
            worker_of(server).send_signal(signal.SIGKILL)
            events = list(client.watch_training_run(run.name))
            failed = client.get_training_run(run.name)
            assert failed.state == FAILED and "SIGKILL" in failed.state_message
            assert events[-1].state_change.state == FAILED

            assert client.resume_training_run(run.name).state == QUEUED
            wait_for_step(client, run.name, 2, after_sequence=events[-1].sequence)
            worker = worker_of(server)
        server.stop(signal.SIGKILL)  # the server dies; its worker must not outlive it
        worker.wait(timeout=60)

        server = start_server(tmp_path / "data")
        with server.client() as client:
            after = client.get_training_run(run.name)
            assert after.state == FAILED and "interrupted" in after.state_message
            history = list(client.watch_training_run(run.name))
            assert history[-1].state_change.state == FAILED
            assert [e.sequence for e in history] == list(range(1, len(history) + 1))
    finally:
        server.stop()


def test_lora_run_and_start_from_previous_run(client: Client) -> None:
    base = start(client, max_steps=10)
    list(client.watch_training_run(base.name))
    assert client.get_training_run(base.name).state == SUCCEEDED

    lora = client.create_training_run(
        "datasets/dev-v1",
        local_path=base.name,  # start from the run's checkpoint
        hyperparameters={**QUICK, "max_steps": 6},
        lora_rank=4,
    )
    list(client.watch_training_run(lora.name))
    done = client.get_training_run(lora.name)
    assert done.state == SUCCEEDED, done.state_message
    assert done.lora.enabled and done.lora.rank == 4
    # Started from trained weights, not from a random initialisation.
    initial = client.get_training_run(base.name).metrics.initial_train_loss
    assert done.metrics.initial_train_loss < initial - 0.3
    assert client.generate(lora.name, ["Hi"], max_new_tokens=8).step == 6


def test_a_subword_run_exports_its_tokenizer_and_a_run_from_the_export_reads_alike(
    client: Client, trainer: ServerProcess
) -> None:
    """The default tokenizer is trained on the run's train split, saved with the run,
    exported as tokenizer.model, and a run started from the export tokenizes the
    same text into the same ids."""
    import sentencepiece as spm

    base = start(client, max_steps=4)
    assert base.model.tokenizer.kind == training_pb2.TOKENIZER_KIND_SUBWORD
    assert base.model.tokenizer.vocab_size == 1024
    list(client.watch_training_run(base.name))
    assert client.get_training_run(base.name).state == SUCCEEDED
    files = [f.name for f in client.export_model(base.name, "exports/subword").files]
    assert "tokenizer.model" in files

    again = client.create_training_run(
        "datasets/dev-v1",
        local_path="exports/subword",
        hyperparameters={**QUICK, "max_steps": 2},
    )
    assert not again.model.HasField("tokenizer")  # the export's own
    list(client.watch_training_run(again.name))
    assert client.get_training_run(again.name).state == SUCCEEDED
    assert client.generate(again.name, ["Hi"], max_new_tokens=8).step == 2

    def ids(run: training_pb2.TrainingRun) -> list[list[int]]:
        run_dir = trainer.data_dir / "runs" / run.name.removeprefix("trainingRuns/")
        model = json.loads((run_dir / "model.json").read_text())
        sp = spm.SentencePieceProcessor(model_file=model["tokenizer"])
        texts = [line.decode() for line in TRACES_JSONL.read_bytes().splitlines()[:50]]
        return [list(sp.encode(text)) for text in texts]

    assert ids(base) == ids(again)
    with pytest.raises(InvalidArgument) as err:
        client.create_training_run(
            "dev-v1", local_path="exports/subword", tokenizer="bytes", hyperparameters=QUICK
        )
    assert err.value.field_violations[0].field == "training_run.model.tokenizer"


def test_validate_only_stores_nothing_and_epochs_resolve_to_the_steps_that_train(
    client: Client,
) -> None:
    train_count = client.get_dataset("datasets/dev-v1").stats.train_count
    before = [r.name for r in client.list_training_runs()]
    checked = client.create_training_run(
        "dev-v1",
        hyperparameters={"num_epochs": 2, "batch_size": 8},
        labels={"team": "dry"},
        validate_only=True,
    )
    assert checked.name == "" and checked.state == QUEUED and checked.labels["team"] == "dry"
    hp = checked.hyperparameters
    assert (hp.num_epochs, hp.max_steps) == (2, math.ceil(2 * train_count / 8))
    assert hp.learning_rate == 3e-2  # the preset's default, resolved
    # The data as the worker would prepare it: the length chosen, nothing cut silently.
    assert hp.max_seq_len % 64 == 0 and hp.max_seq_len > 0
    assert checked.metrics.dropped_examples == 0
    assert checked.metrics.truncated_examples <= train_count // 100 + 1
    assert [r.name for r in client.list_training_runs()] == before
    with pytest.raises(NotFound):
        client.create_training_run("datasets/nope-v1", validate_only=True)
    with pytest.raises(InvalidArgument) as err:
        client.create_training_run(
            "dev-v1", hyperparameters={"num_epochs": 1, "max_steps": 5}, validate_only=True
        )
    assert err.value.field_violations[0].field == "training_run.hyperparameters.num_epochs"

    run = client.create_training_run(
        "dev-v1", hyperparameters={**QUICK, "num_epochs": 1, "batch_size": 64}
    )
    steps = math.ceil(train_count / 64)
    assert run.hyperparameters.max_steps == steps
    events = list(client.watch_training_run(run.name))
    trained = [e.step for e in events if kind(e) == "step_metrics"]
    assert trained == list(range(1, steps + 1))
    assert client.get_training_run(run.name).state == SUCCEEDED


def test_create_errors(client: Client, trainer: ServerProcess) -> None:
    def bad(field: str, **kwargs: Any) -> None:
        with pytest.raises(InvalidArgument) as err:
            client.create_training_run(kwargs.pop("dataset", "datasets/dev-v1"), **kwargs)
        assert field in [v.field for v in err.value.field_violations], err.value

    bad("training_run.dataset", dataset="")
    bad("training_run.model.preset", preset="gpt-9")
    bad("training_run.model.local_path", preset="gemma3-1b")
    bad("training_run.model.local_path", local_path="../../etc")
    bad("training_run.model.local_path", local_path="/etc")
    bad("training_run.hyperparameters.max_steps", hyperparameters={"max_steps": -5})
    bad("training_run.hyperparameters.learning_rate", hyperparameters={"learning_rate": 2.0})
    bad("training_run.lora.rank", lora_rank=5000)
    bad("training_run.model.tokenizer.vocab_size", vocab_size=10)
    bad("training_run.model.tokenizer.vocab_size", tokenizer="bytes", vocab_size=1000)
    with pytest.raises(NotFound):
        client.create_training_run("datasets/nope-v1")
    with pytest.raises(NotFound):
        client.get_training_run("trainingRuns/00000000-0000-0000-0000-000000000000")
    with pytest.raises(InvalidArgument):
        client.get_training_run("trainingRuns/not-a-uuid")
    with pytest.raises(InvalidArgument):
        client.generate("trainingRuns/00000000-0000-0000-0000-000000000000", [])

    same = [
        client.create_training_run(
            "dev-v1", hyperparameters={"max_steps": 1}, request_id="once", labels={"team": "a"}
        )
        for _ in range(2)
    ]
    assert same[0].name == same[1].name and same[0].labels["team"] == "a"
    # Queued behind nothing or running: cancel ends it either way, and it has no
    # checkpoint to generate from until a step was saved.
    client.cancel_training_run(same[0].name)
    list(client.watch_training_run(same[0].name))
    ended = client.get_training_run(same[0].name)
    if ended.checkpoint_step == 0:
        with pytest.raises(FailedPrecondition, match="no checkpoint"):
            client.generate(ended.name, ["hi"])
    names = [r.name for r in client.list_training_runs(page_size=1)]
    assert same[0].name in names and len(names) == len(set(names))
    assert all(r.state == SUCCEEDED for r in client.list_training_runs(state="SUCCEEDED"))
    # AIP-160 filters: dataset (name or key), state, labels, create_time.
    labelled = [r.name for r in client.list_training_runs('labels.team = "a"')]
    assert labelled == [same[0].name]
    assert {r.name for r in client.list_training_runs('dataset = "datasets/dev-v1"')} >= set(
        labelled
    )
    assert not list(client.list_training_runs('dataset = "nope-v1" AND labels.team = "a"'))
    assert all(
        r.state == SUCCEEDED and r.dataset == "datasets/dev-v1"
        for r in client.list_training_runs('state = "SUCCEEDED" AND dataset = "dev-v1"')
    )
    assert not list(client.list_training_runs('create_time > "2999-01-01T00:00:00Z"'))
    for bad_filter in ('state = "DONE"', 'model = "x"', "state > 3", "dataset ="):
        with pytest.raises(InvalidArgument) as err:
            list(client.list_training_runs(bad_filter))
        assert err.value.field_violations[0].field == "filter", bad_filter


def test_learning_loop_on_a_learnable_dataset(client: Client, trainer: ServerProcess) -> None:
    """Data-chosen max_seq_len with counted truncation, exact match at every eval,
    the best checkpoint, and warm inference; on data a tiny model learns in seconds."""
    lines = [
        orjson.dumps({"prompt": f"Greet visitor {n}.", "final_answer": "hello", "meta": {}})
        for n in range(300)
    ]
    long_prompt = {"prompt": "Greet " + "very " * 400 + "politely.", "final_answer": "hello"}
    long_answer = {"prompt": "Greet at length.", "final_answer": "hello " * 400}
    lines += [orjson.dumps(long_prompt), orjson.dumps(long_answer)]
    client.import_jsonl(line + b"\n" for line in lines)
    # LATEST: the 302 traces just imported (the module's server also holds the corpus).
    dataset = client.build_dataset("greet", "v1", limit=302, eval_fraction=0.2, seed=2)
    in_train = {item.trace_id for item in client.list_dataset_items(dataset.name, split="TRAIN")}
    long_ids = {
        t.name.removeprefix("traces/"): t.prompt
        for t in client.list_traces("steps >= 0", page_size=1000)
        if t.prompt in (long_prompt["prompt"], long_answer["prompt"])
    }
    expect_truncated = sum(
        1 for tid, p in long_ids.items() if tid in in_train and p == long_prompt["prompt"]
    )
    expect_dropped = sum(
        1 for tid, p in long_ids.items() if tid in in_train and p == long_answer["prompt"]
    )

    hp = {"max_steps": 60, "eval_every_steps": 20, "eval_examples": 16, "warmup_steps": 5}
    hp["checkpoint_every_steps"] = 20
    run = client.create_training_run(dataset.name, hyperparameters=hp)
    assert run.hyperparameters.max_seq_len == 0  # chosen from the data
    events = list(client.watch_training_run(run.name))
    (prepared,) = [e.data_prepared for e in events if kind(e) == "data_prepared"]
    assert prepared.max_seq_len_from_data and prepared.max_seq_len % 64 == 0
    assert (prepared.truncated_examples, prepared.dropped_examples) == (
        expect_truncated,
        expect_dropped,
    )
    warnings = {e.warning.reason for e in events if kind(e) == "warning"}
    assert ("EXAMPLES_TRUNCATED" in warnings) == bool(expect_truncated)
    assert ("EXAMPLES_DROPPED" in warnings) == bool(expect_dropped)

    evals = [e for e in events if kind(e) == "eval_metrics"]
    assert [e.step for e in evals] == [0, 20, 40, 60]
    assert all(e.eval_metrics.example_count == 16 for e in evals)
    assert evals[-1].eval_metrics.exact_match > 0.5, evals[-1]
    assert list(client.watch_training_run(run.name)) == events  # replayed identically

    done = client.get_training_run(run.name)
    assert done.hyperparameters.max_seq_len == prepared.max_seq_len
    assert done.metrics.truncated_examples == expect_truncated
    assert done.metrics.dropped_examples == expect_dropped
    best = done.best_checkpoint_step
    assert best in {e.step for e in evals if e.eval_metrics.best}
    # One category here, so the category mean that chooses the best is exact match.
    assert all(
        e.eval_metrics.category_mean_exact_match == e.eval_metrics.exact_match for e in evals
    )
    assert done.metrics.best_exact_match == max(e.eval_metrics.exact_match for e in evals)

    prompts = ["Greet visitor 7.", "Greet visitor 1000."]
    began = time.monotonic()
    cold = client.generate(run.name, prompts, max_new_tokens=32, checkpoint="best")
    cold_s = time.monotonic() - began
    began = time.monotonic()
    warm = client.generate(run.name, prompts, max_new_tokens=32, checkpoint="best")
    warm_s = time.monotonic() - began
    assert cold.step == warm.step == best
    assert [g.text for g in warm.generations] == [g.text for g in cold.generations]
    assert warm_s * 5 < cold_s, (cold_s, warm_s)
    assert client.generate(run.name, prompts[:1]).step == 60  # latest by default
    evaluation = client.evaluate_run(run.name, checkpoint="best")
    assert evaluation.step == best and evaluation.accuracy > 0.5
    assert evaluation.max_new_tokens < 64  # from the references, not a fixed budget
    with pytest.raises(FailedPrecondition, match="kept"):
        client.generate(run.name, prompts, checkpoint="3")

    # TensorBoard event files next to the stream: loss, learning rate, exact match.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = trainer.data_dir / "runs" / run.name.removeprefix("trainingRuns/") / "tensorboard"
    scalars = EventAccumulator(str(board)).Reload()
    tags = set(scalars.Tags()["scalars"])
    assert {"train/loss", "train/learning_rate", "eval/loss", "eval/exact_match"} <= tags, tags
    assert [e.step for e in scalars.Scalars("eval/exact_match")] == [0, 20, 40, 60]
    assert [e.value for e in scalars.Scalars("eval/exact_match")] == pytest.approx(
        [e.eval_metrics.exact_match for e in evals]
    )
    assert len(scalars.Scalars("train/loss")) == 60


@pytest.mark.slow
def test_default_run_on_the_corpus_learns(client: Client) -> None:
    """The issue's acceptance run: a few hundred default steps on the 550 traces."""
    run = client.create_training_run("datasets/dev-v1", hyperparameters={"max_steps": 300})
    events = list(client.watch_training_run(run.name))
    losses = [e.step_metrics.loss for e in events if kind(e) == "step_metrics"]
    evals = [e.eval_metrics.eval_loss for e in events if kind(e) == "eval_metrics"]
    assert len(losses) == 300
    assert sum(losses[-10:]) / 10 < losses[0] / 2, "streamed loss falls by more than half"
    assert evals[-1] < evals[0]
    out = client.generate(run.name, ["What is 15 + 27?"], max_new_tokens=160).generations[0]
    assert out.text.startswith("Reasoning:") or "Answer:" in out.text, out.text
