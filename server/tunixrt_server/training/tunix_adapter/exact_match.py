"""Task accuracy during training: after each evaluation, decode a fixed sample of
the eval split greedily with the trainer's current parameters, score it by exact
match, keep the best checkpoint and count evaluations without improvement.

The sample holds the same number of examples of each category
(eval_sample.py), and the best checkpoint is the one with the best mean of the
categories' exact match, so a noisy hard category (arithmetic at 10-20%) cannot
outvote an easy one."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tunix.sft import hooks
from tunix.sft.checkpoint_manager import CheckpointManager

from ...core import scoring
from ...core.scoring import category_mean
from .. import batches
from . import distributed
from .decoding import Decoder
from .progress import Listener

# Exact match decodes in chunks; past this many seconds it scores what it has.
EXACT_MATCH_BUDGET_S = 120.0


class EvalLoss(Protocol):
    eval_loss: float  # the latest evaluation's loss, reported with exact match


@dataclass
class Best:
    step: int
    value: float
    stale_evals: int = 0  # evaluations since it last improved


class EvalHook(hooks.TrainingHooks):  # type: ignore[misc]  # Tunix is untyped
    """After each evaluation: exact match on the fixed sample, best checkpoint, patience."""

    def __init__(
        self,
        listener: Listener,
        backend: EvalLoss,
        sample: Sequence[batches.Example],
        max_new_tokens: int,
        best: Best,
        best_manager: CheckpointManager,
        patience: int,
        lora: bool,
        log_scalar: Callable[..., None],
    ) -> None:
        self._listener = listener
        self._log_scalar = log_scalar
        self._backend = backend
        self._sample = sample
        self._max_new = max_new_tokens
        self._decoder: Decoder | None = None
        self.best = best
        self._best_manager = best_manager
        self._patience = patience
        self._lora = lora
        self.stop = False

    def bind(self, decoder: Decoder) -> None:
        self._decoder = decoder

    def on_eval_step_end(self, train_ctx: Any, eval_loss: float) -> None:
        step = int(train_ctx.train_steps)
        exact = self._exact_match() if self._sample and self._decoder else None
        improved = False
        if exact is not None:
            self._log_scalar("/eval/exact_match", exact["accuracy"], step=step)
            for category, acc in exact["per_category"].items():
                self._log_scalar(f"/eval/exact_match/{category}", acc["accuracy"], step=step)
        if exact is not None and step > 0:
            value = exact["category_mean"]
            improved = distributed.agree(value > self.best.value)
            if improved:
                self._best_manager.save(
                    step, train_ctx.model, save_only_lora_params=self._lora, force=True
                )
                self.best = Best(step, value)
            else:
                self.best.stale_evals += 1
            if self._patience and self.best.stale_evals >= self._patience:
                self.stop = True
        self._listener.on_eval(step, self._backend.eval_loss, exact, improved)

    def _exact_match(self) -> dict[str, Any]:
        assert self._decoder is not None
        began = time.perf_counter()
        outputs: list[str] = []
        chunk = 64
        for start in range(0, len(self._sample), chunk):
            if distributed.agree(time.perf_counter() - began > EXACT_MATCH_BUDGET_S):
                break
            part = self._sample[start : start + chunk]
            outputs += self._decoder([e.prompt for e in part], self._max_new)
        scored = [scoring.Example(e.prompt, e.answer, e.category) for e in self._sample]
        result = scoring.score(scored[: len(outputs)], outputs)
        result["generation_seconds"] = time.perf_counter() - began
        result["category_mean"] = category_mean(result)
        return result

    # The other hooks are not needed.
    def on_train_start(self, train_ctx: Any) -> None: ...
    def on_train_end(self, train_ctx: Any) -> None: ...
    def on_train_step_start(self, train_ctx: Any) -> None: ...
    def on_train_step_end(self, train_ctx: Any, train_step: int, train_loss: float) -> None: ...
    def on_eval_step_start(self, train_ctx: Any) -> None: ...
