"""A GRPO run's per-step report: Tunix's RL scalars (the actor's loss and KL, the
rollout's rewards and completion lengths, and this package's own reward
statistics) joined into one step event per policy update.

Tunix tags a rollout's scalars with the global step before the update they feed
(0-based) and the actor's with the update's own step (1-based), and logs the
actor's first; so the rollout scalars tagged s belong to update s + 1, and a
rollout scalar tagged t closes update t.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .progress import Listener

REWARD_PREFIX = "reward/"  # GrpoRewards' per-function statistics: reward/{name}/{mean,std}


class GrpoBackend:
    """A Tunix metrics backend (log_scalar/close) feeding a Listener's on_step."""

    def __init__(
        self,
        listener: Listener,
        learning_rate: Callable[[int], float],
        completions_per_step: int,
    ) -> None:
        self._listener = listener
        self._learning_rate = learning_rate
        self._completions = completions_per_step
        self._actor_step: int | None = None
        self._actor: dict[str, float] = {}
        self._rollouts: dict[int, dict[str, float]] = {}
        self._last_rollout: dict[str, float] = {}
        self.eval_loss = 0.0  # GRPO measures no eval loss; the eval hook reads this
        self.after_step: Callable[[], None] = lambda: None

    def log_scalar(self, event: str, value: Any, **kwargs: Any) -> None:
        group, found, name = event.partition("/train/")
        if not found:
            return
        step = int(kwargs.get("step") or 0)
        if group.endswith("actor"):
            if self._actor_step is not None and step != self._actor_step:
                self._flush()
            self._actor_step = step
            self._actor[name] = float(value)
        else:
            if self._actor_step is not None and step >= self._actor_step:
                self._flush()
            key = f"{group.rsplit('/', 1)[-1]}/{name}"
            self._rollouts.setdefault(step + 1, {})[key] = float(value)

    def _flush(self) -> None:
        if self._actor_step is None:
            return
        step, actor = self._actor_step, self._actor
        self._actor_step, self._actor = None, {}
        rollout = self._rollouts.pop(step, None) or self._last_rollout  # num_iterations > 1
        self._last_rollout = rollout
        for old in [s for s in self._rollouts if s < step]:
            del self._rollouts[old]
        grpo = grpo_metrics(actor, rollout, self._completions)
        tokens = int(grpo["completion_length"] * self._completions)
        self._listener.on_step(
            step, actor.get("loss", 0.0), self._learning_rate(step), tokens, grpo
        )
        self.after_step()

    def close(self) -> None:
        self._flush()


def grpo_metrics(
    actor: dict[str, float], rollout: dict[str, float], completions: int
) -> dict[str, Any]:
    """A GrpoStepMetrics message's fields."""
    rewards: dict[str, dict[str, float]] = {}
    for key, value in rollout.items():
        if key.startswith(REWARD_PREFIX) and key.count("/") == 2:
            _, name, stat = key.split("/")
            rewards.setdefault(name, {})[stat] = value
    length = rollout.get("completions/mean_length", 0.0)
    seconds = rollout.get("grpo/rollout_seconds", 0.0)
    return {
        "reward_mean": rollout.get("grpo/reward_mean", rollout.get("rewards/mean", 0.0)),
        "reward_std": rollout.get("grpo/reward_std", 0.0),
        "rewards": rewards,
        "kl": actor.get("kl", 0.0),
        "completion_length": length,
        "zero_variance_groups": rollout.get("grpo/zero_variance_groups", 0.0),
        "rollout_seconds": seconds,
        "rollout_tokens_per_second": length * completions / seconds if seconds > 0 else 0.0,
    }
