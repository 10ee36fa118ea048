"""Tunix's RL scalars, in the order and with the step tags Tunix 0.1.7 logs them,
become one step event per policy update."""

from __future__ import annotations

from typing import Any

import numpy as np

from tunixrt_server.training.tunix_adapter.grpo_progress import GrpoBackend
from tunixrt_server.training.tunix_adapter.grpo_rewards import GrpoRewards
from tunixrt_server.training.tunix_adapter.progress import DataInfo


class Steps:
    def __init__(self) -> None:
        self.steps: list[tuple[int, float, float, int, dict[str, Any] | None]] = []

    def on_data(self, info: DataInfo) -> None: ...
    def on_eval(self, step: int, loss: float, exact: dict[str, Any] | None, best: bool) -> None: ...
    def on_checkpoint(self, step: int, path: str) -> None: ...

    def on_step(
        self, step: int, loss: float, lr: float, tokens: int, grpo: dict[str, Any] | None = None
    ) -> None:
        self.steps.append((step, loss, lr, tokens, grpo))


def _rollout(backend: GrpoBackend, tag: int, reward: float) -> None:
    backend.log_scalar("rewards/train/mean", reward, step=tag)
    backend.log_scalar("completions/train/mean_length", 10.0, step=tag)
    backend.log_scalar("grpo/train/reward_mean", reward, step=tag)
    backend.log_scalar("grpo/train/rollout_seconds", 2.0, step=tag)
    backend.log_scalar("reward/train/exact_match/mean", reward, step=tag)
    backend.log_scalar("reward/train/exact_match/std", 0.5, step=tag)


def _update(backend: GrpoBackend, step: int, loss: float) -> None:
    backend.log_scalar("actor/train/loss", loss, step=step)
    backend.log_scalar("actor/train/kl", 0.01 * step, step=step)


def test_a_rollout_joins_the_update_it_fed() -> None:
    listener = Steps()
    backend = GrpoBackend(listener, lambda step: step * 1e-4, completions_per_step=8)
    # Tunix: rollout 1 (tagged 0), then update 1's scalars, then rollout 2 (tagged 1), ...
    _rollout(backend, 0, 0.25)
    _update(backend, 1, 0.5)
    _rollout(backend, 1, 0.5)
    _update(backend, 2, 0.4)
    _rollout(backend, 2, 0.75)
    _update(backend, 3, 0.3)
    backend.close()
    assert [s[0] for s in listener.steps] == [1, 2, 3]
    assert [s[4]["reward_mean"] for s in listener.steps if s[4]] == [0.25, 0.5, 0.75]
    _, loss, lr, tokens, grpo = listener.steps[1]
    assert (loss, lr, tokens) == (0.4, 2e-4, 80)
    assert grpo is not None and grpo["kl"] == 0.02
    assert grpo["rewards"] == {"exact_match": {"mean": 0.5, "std": 0.5}}
    assert grpo["rollout_tokens_per_second"] == 10.0 * 8 / 2.0


def test_rewards_weigh_the_registry_and_report_each_function() -> None:
    rewards = GrpoRewards([("exact_match", 1.0), ("format", 0.5)], num_generations=2)
    completions = ["Reasoning:\n1. a\nAnswer: red<end_of_turn>", "Answer: blue", "Answer: red"]
    total = rewards.reward(["p"] * 4, [*completions, "Answer: red"], np.array(["red"] * 4))
    assert total == [1.5, 0.0, 1.0, 1.0]
    metrics = rewards.metrics()
    assert metrics["reward/format/mean"][0] == 0.25
    assert metrics["grpo/zero_variance_groups"][0] == 0.5  # the second prompt's pair agrees
