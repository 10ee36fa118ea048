"""A GRPO run's settings (GrpoConfig): typed, defaults filled in, range-checked.
Zero in a request means the default, as for the hyperparameters."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tunixrt.v1 import training_pb2

from .errors import FieldViolation, bad_field, invalid_argument
from .rewards import REWARDS

SFT, GRPO = "sft", "grpo"
METHODS = {
    training_pb2.TRAINING_METHOD_UNSPECIFIED: SFT,
    training_pb2.TRAINING_METHOD_SFT: SFT,
    training_pb2.TRAINING_METHOD_GRPO: GRPO,
}
# Tunix's learners: grpo_learner, dapo_learner, drgrpo_learner.
LOSSES = {
    training_pb2.GRPO_LOSS_UNSPECIFIED: "grpo",
    training_pb2.GRPO_LOSS_GRPO: "grpo",
    training_pb2.GRPO_LOSS_DAPO: "dapo",
    training_pb2.GRPO_LOSS_DR_GRPO: "drgrpo",
}
ROLLOUT_ENGINES = ("vanilla", "vllm", "sglang_jax")
AUTO = 0  # max_new_tokens chosen from the train split
NO_KL = -1.0
MAX_NEW_TOKENS = 4_096
FIELD = "training_run.grpo"
# A GRPO run's hyperparameter defaults, before the preset's: it refines a trained
# model, so it steps far more gently than training from scratch (3e-2).
HYPERPARAMETERS: dict[str, Any] = {"learning_rate": 1e-3}


@dataclass(frozen=True)
class Grpo:
    num_generations: int = 4
    temperature: float = 0.9
    max_new_tokens: int = AUTO
    beta: float = 0.04
    epsilon: float = 0.2
    num_iterations: int = 1
    loss: str = "grpo"
    rewards: tuple[tuple[str, float], ...] = (("exact_match", 1.0),)
    rollout_engine: str = "vanilla"

    @property
    def kl(self) -> float:
        """The KL coefficient Tunix gets (beta -1: none)."""
        return 0.0 if self.beta == NO_KL else self.beta

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "rewards": [list(r) for r in self.rewards]}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | None) -> Grpo:
        values = dict(doc or {})
        if "rewards" in values:
            values["rewards"] = tuple((str(n), float(w)) for n, w in values["rewards"])
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in names})


def _range(bad: list[FieldViolation], name: str, value: float, low: float, high: float) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        bad.append(FieldViolation(f"{FIELD}.{name}", f"must be in [{low}, {high}], got {value}"))


def parse(msg: training_pb2.GrpoConfig) -> Grpo:
    """A request's GrpoConfig, defaults filled in; INVALID_ARGUMENT names each bad field."""
    d = Grpo()
    out = Grpo(
        num_generations=msg.num_generations or d.num_generations,
        temperature=msg.temperature or d.temperature,
        max_new_tokens=msg.max_new_tokens,
        beta=msg.beta or d.beta,
        epsilon=msg.epsilon or d.epsilon,
        num_iterations=msg.num_iterations or d.num_iterations,
        loss=LOSSES.get(msg.loss, ""),
        rewards=tuple((r.name, r.weight or 1.0) for r in msg.rewards) or d.rewards,
        rollout_engine=msg.rollout_engine or d.rollout_engine,
    )
    bad: list[FieldViolation] = []
    _range(bad, "num_generations", out.num_generations, 2, 64)
    _range(bad, "num_iterations", out.num_iterations, 1, 64)
    _range(bad, "max_new_tokens", out.max_new_tokens, 0, MAX_NEW_TOKENS)
    _range(bad, "epsilon", out.epsilon, 1e-6, 10.0)
    if not (math.isfinite(out.temperature) and 0 < out.temperature <= 2):
        bad.append(
            FieldViolation(f"{FIELD}.temperature", f"must be in (0, 2], got {out.temperature}")
        )
    if out.beta != NO_KL:
        _range(bad, "beta", out.beta, 0.0, 100.0)
    if not out.loss:
        bad.append(FieldViolation(f"{FIELD}.loss", f"unknown GrpoLoss {msg.loss}"))
    if out.rollout_engine not in ROLLOUT_ENGINES:
        bad.append(
            FieldViolation(
                f"{FIELD}.rollout_engine",
                f"unknown engine {out.rollout_engine!r}; known: {', '.join(ROLLOUT_ENGINES)}",
            )
        )
    bad += reward_violations(out.rewards)
    if bad:
        raise invalid_argument(bad, reason="INVALID_GRPO_CONFIG")
    return out


def reward_violations(rewards: Sequence[tuple[str, float]]) -> list[FieldViolation]:
    bad: list[FieldViolation] = []
    seen: set[str] = set()
    for i, (name, weight) in enumerate(rewards):
        field = f"{FIELD}.rewards[{i}]"
        if name not in REWARDS:
            known = ", ".join(REWARDS)
            bad.append(FieldViolation(f"{field}.name", f"unknown reward {name!r}; known: {known}"))
        elif name in seen:
            bad.append(FieldViolation(f"{field}.name", f"{name!r} is given twice"))
        seen.add(name)
        if not math.isfinite(weight):
            bad.append(FieldViolation(f"{field}.weight", "must be a finite number"))
    return bad


def method(run: training_pb2.TrainingRun, local_path: str) -> tuple[str, Grpo]:
    """A request's method and its GRPO settings."""
    chosen = METHODS.get(run.method)
    if chosen is None:
        raise bad_field("training_run.method", f"unknown TrainingMethod {run.method}")
    if chosen == SFT:
        if run.HasField("grpo"):
            raise bad_field("training_run.grpo", "only with method TRAINING_METHOD_GRPO")
        return SFT, Grpo()
    if not local_path:
        raise bad_field(
            "training_run.model.local_path",
            "a GRPO run starts from a model: give a finished SFT run (trainingRuns/{uuid}) "
            "or an exported model directory",
        )
    return GRPO, parse(run.grpo)
