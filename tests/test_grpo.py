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
from tunixrt import Client, InvalidArgument, NotFound
from tunixrt.monitor import LossHistory, save_loss_plot
from tunixrt.v1 import training_pb2

# One pytest-xdist process runs this file: its SFT model (~1.5 min) is trained once.
pytestmark = pytest.mark.xdist_group("grpo")

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


def stopped_sequence(events: list[training_pb2.TrainingEvent]) -> int:
    """The sequence of the CANCELLED state change."""
    return next(
        e.sequence
        for e in events
        if e.HasField("state_change") and e.state_change.state == CANCELLED
    )


def grpo(client: Client, sft_run: str, **hp: Any) -> training_pb2.TrainingRun:
    return client.create_training_run(
        "datasets/red-v1",
        local_path=sft_run,
        method="grpo",
        hyperparameters={**FAST_GRPO, **hp},
        rewards={"exact_match": 1.0, "format": 0.0},
    )


def test_grpo_raises_the_reward_reports_it_and_resumes(
    server: ServerProcess, client: Client, sft_run: str, tmp_path: Path
) -> None:
    """One run: cancelled at a checkpoint, resumed from it, then to the end."""
    run = grpo(client, sft_run, max_steps=30)
    assert run.method == training_pb2.TRAINING_METHOD_GRPO
    assert run.grpo.num_generations == 4 and run.grpo.max_new_tokens > 10  # chosen
    for event in client.watch_training_run(run.name):
        if event.WhichOneof("event") == "checkpoint_saved" and event.step >= 10:
            client.cancel_training_run(run.name)  # once: the stream ends with the run
            break
    for _ in client.watch_training_run(run.name):  # until it has ended
        pass
    stopped = client.get_training_run(run.name)
    assert stopped.state == CANCELLED and stopped.checkpoint_step >= 10
    client.resume_training_run(run.name)
    events = list(client.watch_training_run(run.name))
    done = client.get_training_run(run.name)
    assert done.state == SUCCEEDED, done.state_message
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))

    steps = [e for e in events if e.WhichOneof("event") == "step_metrics"]
    resumed = [e.step for e in steps if e.sequence > stopped_sequence(events)]
    assert resumed[0] == stopped.checkpoint_step + 1  # from the checkpoint
    assert resumed == list(range(resumed[0], 31))
    rewards = [e.step_metrics.grpo.reward_mean for e in steps]
    assert mean(rewards[-8:]) > mean(rewards[:8]) + 0.15, rewards
    last = steps[-1].step_metrics.grpo
    assert set(last.rewards) == {"exact_match", "format"}
    assert last.rewards["exact_match"].mean == last.reward_mean  # format weighs 0
    assert last.completion_length > 0 and last.rollout_seconds > 0
    assert 0 <= last.zero_variance_groups <= 1
    evals = [e.step for e in events if e.WhichOneof("event") == "eval_metrics"]
    assert evals[0] == 0 and evals[-1] == 30 and all(s % 10 == 0 for s in evals)
    assert done.metrics.reward_mean == rewards[-1]
    assert done.metrics.initial_reward_mean == rewards[0]
    assert list(client.watch_training_run(run.name)) == events  # replayed identically

    answer = client.generate(run.name, ["Name a colour (7)."], max_new_tokens=16)
    assert answer.step == 30 and answer.generations[0].text
    other = client.evaluate_run(run.name, dataset="colours-v1", max_new_tokens=16)
    assert other.dataset == "datasets/colours-v1" and other.example_count == 16
    with pytest.raises(NotFound):
        client.evaluate_run(run.name, dataset="nope-v1")
    # TensorBoard beside the stream: Tunix's RL scalars (rewards among them) and
    # the exact match at every evaluation, under the steps the events give.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = server.data_dir / "runs" / run.name.removeprefix("trainingRuns/") / "tensorboard"
    scalars = EventAccumulator(str(board)).Reload()
    tags = set(scalars.Tags()["scalars"])
    assert any("reward" in t for t in tags) and any("kl" in t for t in tags), tags
    exact = next(t for t in tags if t.endswith("eval/exact_match"))
    assert sorted({e.step for e in scalars.Scalars(exact)}) == evals

    history = LossHistory()
    for event in events:
        history.add(event)
    assert len(history.reward) == len(steps)
    assert save_loss_plot(history, tmp_path / "reward.png").stat().st_size > 10_000


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


def test_the_cli_asks_for_a_grpo_run(server: ServerProcess, sft_run: str) -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "tunixrt.cli", "--address", server.address, "--json"),
            *("train", "red-v1", "--method", "grpo", "--from", sft_run, "--validate-only"),
            *("--reward", "exact_match=1", "--reward", "format=0.1", "--generations", "8"),
            *("--grpo-loss", "dr_grpo", "--beta", "-1"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    run = orjson.loads(done.stdout)
    assert run["method"] == "TRAINING_METHOD_GRPO"
    grpo = run["grpo"]
    assert grpo["rewards"] == [
        {"name": "exact_match", "weight": 1.0},
        {"name": "format", "weight": 0.1},
    ]
    assert (grpo["num_generations"], grpo["loss"], grpo["beta"]) == (8, "GRPO_LOSS_DR_GRPO", -1.0)


@pytest.mark.slow
def test_a_lora_grpo_run_trains_and_exports_merged(client: Client, sft_run: str) -> None:
    """LoRA adapters on the SFT model, the reference its unadapted weights; the export
    merges them like an SFT LoRA run's."""
    run = client.create_training_run(
        "datasets/red-v1",
        local_path=sft_run,
        method="grpo",
        lora_rank=4,
        hyperparameters={**FAST_GRPO, "max_steps": 6, "eval_every_steps": -1},
    )
    events = list(client.watch_training_run(run.name))
    done = client.get_training_run(run.name)
    assert done.state == SUCCEEDED, done.state_message
    assert done.lora.enabled and done.metrics.step == 6
    assert sum(e.HasField("step_metrics") for e in events) == 6
    files = {f.name for f in client.export_model(run.name, "exports/grpo-lora").files}
    assert {"model.safetensors", "config.json"} <= files
