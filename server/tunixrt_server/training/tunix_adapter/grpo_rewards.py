"""A GRPO run's reward: the server's reward functions (core/rewards.py) weighted
and summed into the one function Tunix calls, and the statistics Tunix does not
log itself (each function's mean and std, the groups with nothing to learn, the
rollout's time) as a Tunix metric function."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...core.rendering import END
from ...core.rewards import REWARDS, zero_variance_share
from .grpo_progress import REWARD_PREFIX


class GrpoRewards:
    def __init__(self, weights: Sequence[tuple[str, float]], num_generations: int) -> None:
        self._weights = list(weights)
        self._group = num_generations
        self._scores: dict[str, np.ndarray] = {}
        self._total = np.zeros(0)
        self.batch_ready_at = time.perf_counter()  # set when a batch of prompts is handed over
        self._rollout_seconds = 0.0

    def reward(
        self, prompts: list[str], completions: list[str], answer: Any, **_: Any
    ) -> list[float]:
        """Tunix's reward function: one float per completion."""
        self._rollout_seconds = time.perf_counter() - self.batch_ready_at
        texts = [c.split(END, 1)[0] for c in completions]
        references = [str(a) for a in answer]
        self._scores = {
            name: np.array(
                [REWARDS[name].score(t, r) for t, r in zip(texts, references, strict=True)]
            )
            for name, _ in self._weights
        }
        total = np.zeros(len(texts))
        for name, weight in self._weights:
            total += weight * self._scores[name]
        self._total = total
        return [float(x) for x in total]

    def metrics(self, **_: Any) -> dict[str, tuple[float, Any]]:
        """Tunix's metric function, called after the reward of the same batch."""
        out: dict[str, tuple[float, Any]] = {
            "grpo/reward_mean": (float(self._total.mean()), np.mean),
            "grpo/reward_std": (float(self._total.std()), np.mean),
            "grpo/zero_variance_groups": (
                zero_variance_share(self._total.tolist(), self._group),
                np.mean,
            ),
            "grpo/rollout_seconds": (self._rollout_seconds, np.sum),
        }
        for name, scores in self._scores.items():
            out[f"{REWARD_PREFIX}{name}/mean"] = (float(scores.mean()), np.mean)
            out[f"{REWARD_PREFIX}{name}/std"] = (float(scores.std()), np.mean)
        return out
