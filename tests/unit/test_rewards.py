"""The reward registry and a GRPO run's config: pure functions, no JAX."""

from __future__ import annotations

from typing import Any

import pytest

from tunixrt.v1 import training_pb2
from tunixrt_server.core.errors import ApiError
from tunixrt_server.core.grpo_spec import GRPO, SFT, Grpo, method, parse
from tunixrt_server.core.rewards import (
    REWARDS,
    exact_match,
    numeric,
    well_formed,
    zero_variance_share,
)
from tunixrt_server.core.runspec import RunSpec

GOOD = "Reasoning:\n1. Ana has 12.\n2. She adds 9.\nAnswer: 21"


def test_exact_match_scores_as_evaluate_run_does() -> None:
    assert exact_match(GOOD, "21") == 1.0
    assert exact_match("Answer: Red.", "red") == 1.0
    assert exact_match("Answer: 211", "21") == 0.0
    assert exact_match("no answer at all", "21") == 0.0


@pytest.mark.parametrize(
    ("completion", "reference", "score"),
    [
        ("Answer: 1,200.0 apples", "1200", 1.0),
        ("Answer: $31.5", "$31.50", 1.0),
        ("Answer: -3", "-3", 1.0),
        ("Answer: 3", "-3", 0.0),
        ("Answer: none", "4", 0.0),
        ("Answer: Player 1 wins", "player 1 wins", 1.0),  # words: exact match
        ("Answer: 1e400", "1", 0.0),  # not finite: no number
    ],
)
def test_numeric_compares_numbers_within_tolerance(
    completion: str, reference: str, score: float
) -> None:
    assert numeric(completion, reference) == score


@pytest.mark.parametrize(
    ("completion", "score"),
    [
        (GOOD, 1.0),
        ("Answer: 21", 0.0),  # no reasoning
        ("Reasoning:\nthinking\nAnswer: 21", 0.0),  # no numbered step
        (GOOD + "\nAnswer: 22", 0.0),  # two answers
        ("Sure! " + GOOD, 0.0),  # text before the block
        ("Reasoning:\n1. x\nno answer", 0.0),
    ],
)
def test_format_wants_numbered_reasoning_and_one_answer(completion: str, score: float) -> None:
    assert well_formed(completion, "21") == score


def test_every_reward_is_described_and_bounded() -> None:
    texts = [GOOD, "Answer: x", "", "Reasoning:\n1. a\nAnswer: 1\nAnswer: 2"]
    for reward in REWARDS.values():
        assert reward.description
        assert all(0.0 <= reward.score(t, "21") <= 1.0 for t in texts)


def _run(**grpo: Any) -> training_pb2.TrainingRun:
    return training_pb2.TrainingRun(
        method=training_pb2.TRAINING_METHOD_GRPO, grpo=training_pb2.GrpoConfig(**grpo)
    )


def test_grpo_defaults_and_their_round_trip_through_json() -> None:
    chosen, config = method(_run(), "/data/runs/x")
    assert chosen == GRPO and config == Grpo()
    given = parse(
        training_pb2.GrpoConfig(
            beta=-1,
            loss=training_pb2.GRPO_LOSS_DAPO,
            rewards=[
                training_pb2.RewardWeight(name="numeric"),
                training_pb2.RewardWeight(name="format", weight=0.1),
            ],
        )
    )
    assert given.kl == 0.0 and given.loss == "dapo"
    assert given.rewards == (("numeric", 1.0), ("format", 0.1))
    spec = RunSpec(method=GRPO, grpo=given)
    assert RunSpec.from_json(spec.to_json()) == spec
    assert RunSpec.from_json({}).method == SFT  # specs stored before GRPO


@pytest.mark.parametrize(
    ("grpo", "field"),
    [
        ({"num_generations": 1}, "num_generations"),
        ({"temperature": 3.0}, "temperature"),
        ({"beta": -0.5}, "beta"),
        ({"max_new_tokens": 5000}, "max_new_tokens"),
        ({"rollout_engine": "magic"}, "rollout_engine"),
        ({"rewards": [{"name": "exactly"}]}, "rewards[0].name"),
        ({"rewards": [{"name": "format"}, {"name": "format"}]}, "rewards[1].name"),
        ({"rewards": [{"name": "format", "weight": float("nan")}]}, "rewards[0].weight"),
    ],
)
def test_a_bad_grpo_config_names_its_field(grpo: dict[str, Any], field: str) -> None:
    with pytest.raises(ApiError) as err:
        method(_run(**grpo), "/data/runs/x")
    assert [v.field for v in err.value.violations] == [f"training_run.grpo.{field}"]


def test_grpo_needs_a_model_and_sft_takes_no_grpo_config() -> None:
    with pytest.raises(ApiError) as err:
        method(_run(), "")
    assert err.value.violations[0].field == "training_run.model.local_path"
    sft = training_pb2.TrainingRun(grpo=training_pb2.GrpoConfig(num_generations=4))
    with pytest.raises(ApiError) as err:
        method(sft, "")
    assert err.value.violations[0].field == "training_run.grpo"


def test_zero_variance_groups_are_counted_per_prompt() -> None:
    assert zero_variance_share([1.0, 1.0, 0.0, 1.0, 0.0, 0.0], 2) == pytest.approx(2 / 3)
    assert zero_variance_share([], 4) == 0.0
