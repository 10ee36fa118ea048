"""Trace generators: deterministic, valid, and usable from the CLI straight into a server."""

from __future__ import annotations

import subprocess
import sys
import time

import orjson
import pytest

from conftest import ServerProcess
from tunixrt import Client, InvalidArgument, trace_to_dict
from tunixrt.generators import GENERATORS, generate, generate_jsonl
from tunixrt.v1 import training_pb2

CLI = [sys.executable, "-m", "tunixrt.cli"]


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_same_seed_same_bytes_other_seed_other_traces(name: str) -> None:
    first = b"".join(generate_jsonl(name, 500, seed=1))
    assert first == b"".join(generate_jsonl(name, 500, seed=1))
    assert b"".join(generate_jsonl(name, 100, seed=1)) == b"".join(first.splitlines(True)[:100])
    other = b"".join(generate_jsonl(name, 500, seed=2))
    assert other != first
    prompts = [orjson.loads(line)["prompt"] for line in first.splitlines()]
    assert len(set(prompts)) > 10


def test_high_card_duel_reasons_correctly() -> None:
    ranks = "23456789TJQKA"
    for trace in generate("high_card_duel", 2000, seed=5):
        meta = trace["meta"]
        mine, theirs = ranks.index(meta["my_card"][0]), ranks.index(meta["opponent_card"][0])
        assert meta["my_card"] != meta["opponent_card"]
        assert meta["result"] == ("win" if mine > theirs else "lose" if mine < theirs else "tie")
        assert trace["final_answer"] == ("bet" if mine * 4 > 51 - mine * 4 - 3 else "fold")
        assert {"source", "game", "episode_index", "seed"} <= set(meta)
        assert meta["source"] == "high_card_duel"


def test_arithmetic_steps_compute_the_answer() -> None:
    seen = set()
    for trace in generate("arithmetic", 3000, seed=9):
        meta = trace["meta"]
        seen.add((meta["difficulty"], *meta["operations"][:1]))
        steps = trace["steps"]
        for step in steps[1:-1]:  # "a op b = c", checked with Python's arithmetic
            left, result = step["content"].split(" = ")
            a, op, b = left.split(" ")
            expected = {"+": int(a) + int(b), "-": int(a) - int(b), "×": int(a) * int(b)}.get(
                op, int(a) // int(b)
            )
            assert int(result) == expected and (op != "÷" or int(a) % int(b) == 0)
        assert steps[-2]["content"].endswith(f"= {trace['final_answer']}")
        assert (
            len(steps) - 2
            == len(meta["operations"])
            == {"easy": 1, "medium": 2, "hard": 3}[meta["difficulty"]]
        )
    assert {d for d, *_ in seen} == {"easy", "medium", "hard"}
    assert {op for _, op in seen} == {"add", "subtract", "multiply", "divide"}


def test_generate_is_fast() -> None:
    started = time.perf_counter()
    count = sum(1 for _ in generate_jsonl("arithmetic", 50_000, seed=0))
    rate = count / (time.perf_counter() - started)
    print(f"arithmetic: {rate:,.0f} traces/s")
    assert rate > 10_000  # generous: ~100k/s here


def test_cli_generate_import_then_dataset_holds_exactly_those(
    server: ServerProcess, client: Client
) -> None:
    base = [*CLI, "--address", server.address, "traces", "generate"]
    for name, count in (("high_card_duel", 1000), ("arithmetic", 700)):
        done = subprocess.run(
            [*base, name, "--count", str(count), "--seed", "1", "--import"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0 and f"{count} imported, 0 rejected" in done.stdout, done.stderr
    stdout = subprocess.run(
        [*base, "high_card_duel", "--count", "3", "--seed", "1"], capture_output=True, timeout=60
    ).stdout
    assert stdout == b"".join(generate_jsonl("high_card_duel", 3, seed=1))

    ds = client.build_dataset("duel", "v1", filter='meta.source = "high_card_duel"')
    assert ds.stats.trace_count == 1000 and dict(ds.stats.source_counts) == {"high_card_duel": 1000}
    hard = client.build_dataset("hard", "v1", filter='meta.difficulty = "hard"')
    assert 0 < hard.stats.trace_count < 700


def test_the_server_generates_what_the_sdk_generates_and_stores_it_on_request(
    server: ServerProcess, client: Client
) -> None:
    """GenerateTraces: a preview equal to the SDK's generator and byte-identical
    twice; persist stores and names them; the CLI's --on-server; the limits."""
    preview = client.generate_traces("arithmetic", 20, seed=3, options={"difficulty": "easy"})
    again = client.generate_traces("arithmetic", 20, seed=3, options={"difficulty": "easy"})
    assert preview.SerializeToString(deterministic=True) == again.SerializeToString(
        deterministic=True
    )
    expected = list(generate("arithmetic", 20, seed=3, difficulty="easy"))
    shown = [trace_to_dict(t) for t in preview.traces]
    assert [{k: d[k] for k in e} for d, e in zip(shown, expected, strict=True)] == expected
    assert preview.stored_count == 0 and server.count("traces") == 0
    assert all(not t.name for t in preview.traces)

    stored = client.generate_traces("high_card_duel", 10, seed=4, persist=True, view="BASIC")
    assert stored.stored_count == 10 and server.count("traces") == 10
    assert all(t.name.startswith("traces/") and not t.prompt for t in stored.traces)
    assert {"game", "result", "my_card"} <= set(stored.traces[0].meta)
    full = client.get_trace(stored.traces[0].name)
    assert trace_to_dict(full)["prompt"] == next(generate("high_card_duel", 1, seed=4))["prompt"]

    done = subprocess.run(
        [
            *CLI,
            "--address",
            server.address,
            *("traces", "generate", "arithmetic"),
            *("--count", "30", "--on-server"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "30 generated and stored" in done.stdout, done.stderr
    assert server.count("traces") == 40

    described = {g.name: g for g in client.list_generators()}
    assert set(described) == set(GENERATORS)
    (difficulty,) = described["arithmetic"].parameters
    assert list(difficulty.choices) == ["easy", "medium", "hard"]
    assert described["high_card_duel"].max_count == 10_000 and described["arithmetic"].version

    for kwargs, field in (
        ({"generator": "chess", "count": 1}, "generator"),
        ({"generator": "arithmetic", "count": 0}, "count"),
        ({"generator": "arithmetic", "count": 10_001}, "count"),
        ({"generator": "arithmetic", "count": 1, "options": {"level": "x"}}, "options[level]"),
        (
            {"generator": "arithmetic", "count": 1, "options": {"difficulty": "x"}},
            "options[difficulty]",
        ),
        ({"generator": "arithmetic", "count": 1_001}, "view"),
    ):
        with pytest.raises(InvalidArgument) as err:
            client.generate_traces(**kwargs)  # type: ignore[arg-type]
        assert err.value.field_violations[0].field == field, kwargs
    assert server.count("traces") == 40


@pytest.mark.slow
def test_training_on_arithmetic_reaches_measurable_accuracy(client: Client) -> None:
    """A benchmark figure for the README, not a threshold: 2,000 arithmetic traces,
    the default tiny model, 300 steps, exact match on the 200 held-out traces."""
    client.import_jsonl(generate_jsonl("arithmetic", 2000, seed=0))
    ds = client.build_dataset("arith", "v1", eval_fraction=0.1, seed=0)
    run = client.create_training_run(ds.name, hyperparameters={"max_steps": 300})
    events = list(client.watch_training_run(run.name))
    succeeded = training_pb2.TRAINING_RUN_STATE_SUCCEEDED
    assert events[-1].state_change.state == succeeded, client.get_training_run(
        run.name
    ).state_message
    started = time.perf_counter()
    evaluation = client.evaluate_run(run.name, max_new_tokens=128)
    metrics = client.get_training_run(run.name).metrics
    print(
        f"\narithmetic: 300 steps, train loss {metrics.initial_train_loss:.3f} -> "
        f"{metrics.train_loss:.3f}, eval loss {metrics.eval_loss:.3f}; exact match "
        f"{evaluation.correct_count}/{evaluation.example_count} = {evaluation.accuracy:.1%} "
        f"(evaluation took {time.perf_counter() - started:.0f} s)"
    )
    for sample in evaluation.samples[:3]:
        print(f"  {sample.expected_answer!r} <- {sample.predicted_answer!r}")
    assert evaluation.example_count == 200
