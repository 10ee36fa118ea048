"""GRPO end to end: a real server, real worker processes, Tunix's GRPOLearner on CPU.

An SFT model learns to answer "red" or "blue" at random; GRPO on prompts whose
reference is always "red" must raise the reward, with the run's events, cancel
and resume, Generate and the refusals of a bad config as for SFT."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from statistics import mean
from typing import Any

import orjson
import pytest

from conftest import ServerProcess, start_server
from tunixrt import Client, InvalidArgument
from tunixrt.v1 import training_pb2

SUCCEEDED = training_pb2.TRAINING_RUN_STATE_SUCCEEDED
CANCELLED = training_pb2.TRAINING_RUN_STATE_CANCELLED
FAST_SFT = {
    "max_steps": 40,
    "eval_every_steps": -1,
    "checkpoint_every_steps": 20,
    "warmup_steps": 5,
}
# Four prompts x four completions a step; a gentle but visible learning rate.
FAST_GRPO = {
    "batch_size": 4,
    "learning_rate": 3e-3,
    "eval_every_steps": 10,
    "eval_examples": 8,
    "checkpoint_every_steps": 10,
}


def _traces(category: str, answers: list[str]) -> list[bytes]:
    return [
        orjson.dumps(
            {
                "prompt": f"Name a colour ({i}).",
                "final_answer": answer,
                "steps": [],
                "meta": {"category": category},
            }
        )
        for i, answer in enumerate(answers)
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """colours-v1: red or blue at random, for SFT; red-v1: always red, for GRPO."""
    server = start_server(tmp_path_factory.mktemp("grpo"))
    with server.client() as client:
        client.import_jsonl(_traces("any", ["red", "blue"] * 32))
        client.import_jsonl(_traces("red", ["red"] * 64))
        for key, category in (("colours", "any"), ("red", "red")):
            client.build_dataset(
                key, "v1", filter=f'category = "{category}"', eval_fraction=0.25, seed=1
            )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sft_run(server: ServerProcess) -> str:
    with server.client() as client:
        run = client.create_training_run(
            "datasets/colours-v1", tokenizer="bytes", hyperparameters=FAST_SFT
        )
        list(client.watch_training_run(run.name))
        assert client.get_training_run(run.name).state == SUCCEEDED
        return run.name


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    with server.client() as c:
        yield c


def grpo(client: Client, sft_run: str, **hp: Any) -> training_pb2.TrainingRun:
    return client.create_training_run(
        "datasets/red-v1",
        local_path=sft_run,
        method="grpo",
        hyperparameters={**FAST_GRPO, **hp},
        rewards={"exact_match": 1.0, "format": 0.0},
    )


def test_grpo_raises_the_reward_and_reports_it_step_by_step(client: Client, sft_run: str) -> None:
    run = grpo(client, sft_run, max_steps=30)
    assert run.method == training_pb2.TRAINING_METHOD_GRPO
    assert run.grpo.num_generations == 4 and run.grpo.max_new_tokens > 10  # chosen
    events = list(client.watch_training_run(run.name))
    done = client.get_training_run(run.name)
    assert done.state == SUCCEEDED, done.state_message
    steps = [e for e in events if e.WhichOneof("event") == "step_metrics"]
    assert [e.step for e in steps] == list(range(1, 31))
    rewards = [e.step_metrics.grpo.reward_mean for e in steps]
    assert mean(rewards[-8:]) > mean(rewards[:8]) + 0.15, rewards
    last = steps[-1].step_metrics.grpo
    assert set(last.rewards) == {"exact_match", "format"}
    assert last.rewards["exact_match"].mean == last.reward_mean  # format weighs 0
    assert last.completion_length > 0 and last.rollout_seconds > 0
    assert 0 <= last.zero_variance_groups <= 1
    evals = [e for e in events if e.WhichOneof("event") == "eval_metrics"]
    assert [e.step for e in evals] == [0, 10, 20, 30]
    assert done.metrics.reward_mean == rewards[-1]
    assert done.metrics.initial_reward_mean == rewards[0]
    assert list(client.watch_training_run(run.name)) == events  # replayed identically
    answer = client.generate(run.name, ["Name a colour (7)."], max_new_tokens=16)
    assert answer.step == 30 and answer.generations[0].text


def test_a_cancelled_grpo_run_resumes_from_its_checkpoint(client: Client, sft_run: str) -> None:
    run = grpo(client, sft_run, max_steps=20, eval_every_steps=-1)
    for event in client.watch_training_run(run.name):
        if event.WhichOneof("event") == "checkpoint_saved" and event.step >= 10:
            client.cancel_training_run(run.name)
    stopped = client.get_training_run(run.name)
    assert stopped.state == CANCELLED and stopped.checkpoint_step >= 10
    client.resume_training_run(run.name)
    events = list(client.watch_training_run(run.name))
    assert client.get_training_run(run.name).state == SUCCEEDED
    steps = [e.step for e in events if e.WhichOneof("event") == "step_metrics"]
    assert steps[-1] == 20
    resumed = [s for s in steps if s > stopped.metrics.step]
    assert resumed[0] == stopped.checkpoint_step + 1  # from the checkpoint, no gap


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rewards": {"exactly": 1.0}}, "training_run.grpo.rewards[0].name"),
        ({"local_path": ""}, "training_run.model.local_path"),
        ({"grpo": {"max_new_tokens": 2}}, "training_run.grpo.max_new_tokens"),
        ({"grpo": {"num_generations": 1}}, "training_run.grpo.num_generations"),
        ({"method": "sft", "grpo": {"num_generations": 4}}, "training_run.grpo"),
    ],
)
def test_a_bad_grpo_run_is_refused_naming_the_field(
    client: Client, sft_run: str, kwargs: dict[str, Any], field: str
) -> None:
    given = {"local_path": sft_run, "method": "grpo", **kwargs}
    with pytest.raises(InvalidArgument) as err:
        client.create_training_run("datasets/red-v1", **given)
    assert [v.field for v in err.value.field_violations] == [field]


def test_the_server_lists_its_reward_functions(client: Client) -> None:
    info = client.get_server_info()
    assert [r.name for r in info.reward_functions] == ["exact_match", "numeric", "format"]
    assert all(r.description for r in info.reward_functions)


def test_the_cli_starts_a_grpo_run_and_draws_its_reward(
    server: ServerProcess, sft_run: str, tmp_path: Path
) -> None:
    png = tmp_path / "reward.png"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "tunixrt.cli", "--address", server.address, "train"),
            *("red-v1", "--method", "grpo", "--from", sft_run, "--steps", "4"),
            *("--reward", "exact_match=1", "--reward", "format=0.1", "--batch-size", "4"),
            *("--eval-every", "-1", "--png", str(png)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "reward " in done.stdout and "succeeded" in done.stdout.lower()
    assert png.stat().st_size > 10_000
    with server.client() as client:
        (run,) = [r for r in client.list_training_runs() if r.grpo.rewards and r.metrics.step == 4]
    assert [(r.name, r.weight) for r in run.grpo.rewards] == [("exact_match", 1.0), ("format", 0.1)]
