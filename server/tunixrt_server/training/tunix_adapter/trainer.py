"""A supervised fine-tuning run with Tunix's PeftTrainer.

Data: tokenized once, max_seq_len chosen from the train split when the run
left it 0, prompts cut from the left rather than answers from the right, batches
padded to a few bucket lengths. Evaluation: Tunix measures the eval loss; a
training hook then decodes a fixed sample of the eval split greedily with the
trainer's current parameters and scores it by exact match. A better exact
match saves the parameters under `best/` (apart from the rotated checkpoints),
and an optional patience ends the run early.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import optax
import orbax.checkpoint as ocp
from tunix.sft import hooks, metrics_logger, peft_trainer
from tunix.sft import utils as sft_utils
from tunix.sft.checkpoint_manager import CheckpointManager

from ... import scoring
from ...runspec import AUTO, Hyperparameters, RunSpec
from .. import batches
from ..checkpoints import BEST, ROTATED
from ..presets import PRESETS
from . import distributed, models, sharding
from .decoding import Decoder

# Eval-loss cost stays bounded whatever the eval split's size.
MAX_EVAL_BATCHES = 32
# TensorBoard event files (Tunix's metrics logger), next to the live stream.
TENSORBOARD_DIR = "tensorboard"
# Exact match decodes in chunks; past this many seconds it scores what it has.
EXACT_MATCH_BUDGET_S = 120.0


@dataclass(frozen=True)
class DataInfo:
    max_seq_len: int
    from_data: bool
    train_examples: int
    eval_examples: int
    truncated: int
    dropped: int
    buckets: list[int]


class Listener(Protocol):
    def on_data(self, info: DataInfo) -> None: ...
    def on_step(self, step: int, loss: float, learning_rate: float, tokens: int) -> None: ...
    def on_eval(self, step: int, loss: float, exact: dict[str, Any] | None, best: bool) -> None: ...
    def on_checkpoint(self, step: int, path: str) -> None: ...


@dataclass
class TrainResult:
    saved_step: int  # the newest checkpoint
    stopped_early: bool = False  # exact match stopped improving (early_stopping_evals)
    best_step: int = 0
    best_exact_match: float = 0.0


@dataclass
class _Best:
    step: int
    value: float
    stale_evals: int = 0  # evaluations since it last improved


def _model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """Attention and positions follow the padding; the loss follows the completion."""
    padding = batch["padding_mask"]
    return {
        "input_tokens": batch["tokens"],
        "input_mask": batch["completion_mask"],
        "positions": sft_utils.build_positions_from_mask(padding),
        "attention_mask": sft_utils.make_causal_attn_mask(padding),
    }


def _optimizer(hp: Hyperparameters) -> optax.GradientTransformation:
    warmup = min(hp.warmup_steps, max(hp.max_steps - 1, 0))
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=hp.learning_rate,
        warmup_steps=warmup,
        decay_steps=max(hp.max_steps, warmup + 1),
        end_value=hp.learning_rate * 0.1,
    )

    def adamw(learning_rate: Any, weight_decay: float) -> optax.GradientTransformation:
        update = optax.adamw(learning_rate, weight_decay=weight_decay)
        if hp.max_grad_norm > 0:
            return optax.chain(optax.clip_by_global_norm(hp.max_grad_norm), update)
        return update

    # inject_hyperparams outside the chain: Tunix logs the learning rate from its state.
    return optax.inject_hyperparams(adamw)(learning_rate=schedule, weight_decay=hp.weight_decay)


class _MetricsBackend:
    """Receives Tunix's jax.monitoring scalars (`{prefix}/{mode}/{name}`)."""

    def __init__(self, listener: Listener, tokens_of_step: Callable[[int], int]) -> None:
        self._listener = listener
        self._tokens_of_step = tokens_of_step
        self._lr = 0.0
        self._pending: tuple[int, float] | None = None
        self.eval_loss: float = 0.0
        self.after_step: Callable[[], None] = lambda: None

    def log_scalar(self, event: str, value: Any, **kwargs: Any) -> None:
        step = int(kwargs.get("step") or 0)
        if event.endswith("/train/loss"):
            self._flush()
            self._pending = (step, float(value))
        elif event.endswith("/train/learning_rate"):
            self._lr = float(value)
            self._flush()
        elif event.endswith("/eval/loss"):
            self.eval_loss = float(value)  # reported with exact match by the eval hook

    def _flush(self) -> None:
        # The learning rate of a step is logged just after its loss.
        if self._pending is not None:
            step, loss = self._pending
            self._pending = None
            self._listener.on_step(step, loss, self._lr, self._tokens_of_step(step))
            self.after_step()

    def close(self) -> None:
        self._flush()


class _Detached:
    """A metrics backend that never makes training wait: scalars go through a bounded
    queue to the wrapped backend on its own thread. TensorBoard's writer blocks when
    its disk is full (its own queue stops draining), and Tunix calls backends inline
    from jax.monitoring, even for Orbax's internal scalars during a checkpoint save;
    so only train/eval scalars pass, a full queue drops them, and closing waits a
    few seconds at most."""

    CLOSE_WAIT_S = 5.0

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self._queue: queue.Queue[tuple[str, Any, dict[str, Any]] | None] = queue.Queue(10_000)
        self._thread = threading.Thread(target=self._drain, name="tensorboard", daemon=True)
        self._thread.start()

    def log_scalar(self, event: str, value: Any, **kwargs: Any) -> None:
        if "/train/" in event or "/eval/" in event:
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait((event, float(value), kwargs))

    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            with contextlib.suppress(Exception):  # a full disk: lose curves, not the run
                self._backend.log_scalar(item[0], item[1], **item[2])
        with contextlib.suppress(Exception):
            self._backend.close()

    def close(self) -> None:
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(self.CLOSE_WAIT_S)


class _Nowhere:
    """A metrics backend for the processes of a group other than the first."""

    def log_scalar(self, event: str, value: Any, **kwargs: Any) -> None: ...
    def close(self) -> None: ...


class _EvalHook(hooks.TrainingHooks):  # type: ignore[misc]  # Tunix is untyped
    """After each evaluation: exact match on the fixed sample, best checkpoint, patience."""

    def __init__(
        self,
        listener: Listener,
        backend: _MetricsBackend,
        sample: Sequence[batches.Example],
        max_new_tokens: int,
        best: _Best,
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
            value = exact["accuracy"]
            improved = distributed.agree(value > self.best.value)
            if improved:
                self._best_manager.save(
                    step, train_ctx.model, save_only_lora_params=self._lora, force=True
                )
                self.best = _Best(step, value)
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
        return result

    # The other hooks are not needed.
    def on_train_start(self, train_ctx: Any) -> None: ...
    def on_train_end(self, train_ctx: Any) -> None: ...
    def on_train_step_start(self, train_ctx: Any) -> None: ...
    def on_train_step_end(self, train_ctx: Any, train_step: int, train_loss: float) -> None: ...
    def on_eval_step_start(self, train_ctx: Any) -> None: ...


def _prepare(
    spec: RunSpec,
    tokenizer: Any,
    preset_cap: int,
    train_examples: Sequence[batches.Example],
    eval_examples: Sequence[batches.Example],
) -> tuple[batches.Encoded, batches.Encoded, DataInfo]:
    hp = spec.hyperparameters
    from_data = hp.max_seq_len == AUTO
    max_seq_len = (
        batches.choose_max_seq_len(batches.token_lengths(train_examples, tokenizer), preset_cap)
        if from_data
        else hp.max_seq_len
    )
    train_data = batches.encode(train_examples, tokenizer, max_seq_len)
    eval_data = batches.encode(eval_examples, tokenizer, max_seq_len)
    if not len(train_data):
        raise ValueError(
            f"every train example's completion is longer than max_seq_len {max_seq_len}"
        )
    info = DataInfo(
        max_seq_len,
        from_data,
        len(train_data),
        len(eval_data),
        train_data.truncated,
        train_data.dropped,
        batches.bucket_lengths(train_data.lengths, max_seq_len),
    )
    return train_data, eval_data, info


def _exact_match_sample(
    examples: Sequence[batches.Example], size: int, seed: int
) -> list[batches.Example]:
    """A fixed seeded sample, the same at every evaluation and every attempt."""
    if size <= 0 or not examples:
        return []
    rows = np.random.default_rng(seed).permutation(len(examples))[:size]
    return [examples[i] for i in sorted(rows)]


def train(
    spec: RunSpec,
    run_dir: Path,
    train_examples: Sequence[batches.Example],
    eval_examples: Sequence[batches.Example],
    listener: Listener,
    should_stop: Callable[[], bool],
    best_so_far: tuple[int, float] = (0, 0.0),
) -> TrainResult:
    """Trains up to max_steps (or until should_stop, or until exact match stops
    improving for early_stopping_evals evaluations)."""
    hp = spec.hyperparameters
    desc = models.describe_once(spec, run_dir)
    tokenizer = models.load_tokenizer(desc)
    cap = PRESETS[desc.get("preset", spec.model.preset)].max_context
    train_data, eval_data, info = _prepare(spec, tokenizer, cap, train_examples, eval_examples)
    listener.on_data(info)
    mesh = sharding.make_mesh(spec.mesh, hp.batch_size)
    model = models.build(desc)
    sharding.shard(model, mesh)

    evaluating = hp.eval_every_steps > 0 and len(eval_data) > 0
    sample = _exact_match_sample(eval_examples, hp.eval_examples, hp.seed) if evaluating else []
    budget = batches.answer_budget([len(tokenizer.encode(e.completion)) for e in sample])
    best_manager = CheckpointManager(
        str(run_dir / BEST), ocp.CheckpointManagerOptions(max_to_keep=1)
    )
    tokens_per_batch: dict[int, int] = {}
    backend = _MetricsBackend(listener, lambda step: tokens_per_batch.pop(step, 0))
    tensorboard = _Detached(
        metrics_logger.TensorboardBackend(
            log_dir=str(run_dir / TENSORBOARD_DIR), flush_every_n_steps=10
        )
        if distributed.leader()  # one set of curves per run, as Tunix logs
        else _Nowhere()
    )
    hook = _EvalHook(
        listener,
        backend,
        sample,
        budget,
        _Best(*best_so_far),
        best_manager,
        hp.early_stopping_evals,
        bool(desc.get("lora")),
        tensorboard.log_scalar,
    )

    def stop() -> bool:
        return distributed.agree(hook.stop or should_stop())

    def batch_stream() -> Iterator[dict[str, Any]]:
        stream = batches.train_batches(train_data, hp.batch_size, hp.seed, stop, info.buckets)
        for step, batch in enumerate(stream, 1):
            tokens_per_batch[step] = int(batch["padding_mask"].sum())
            yield batch

    checkpoint_root = run_dir / ROTATED
    config = peft_trainer.TrainingConfig(
        eval_every_n_steps=max(hp.eval_every_steps, 1),
        max_steps=hp.max_steps,
        checkpoint_root_directory=str(checkpoint_root),
        # Orbax would otherwise save at most every 180 s whatever the step interval.
        checkpointing_options=ocp.CheckpointManagerOptions(
            save_interval_steps=hp.checkpoint_every_steps, max_to_keep=2
        ),
        metrics_logging_options=metrics_logger.MetricsLoggerOptions(
            log_dir=str(run_dir / TENSORBOARD_DIR),
            backend_kwargs={"custom_backend": [lambda: backend, lambda: tensorboard]},
        ),
        pbar_description=None,
    )
    trainer = peft_trainer.PeftTrainer(model, _optimizer(hp), config)
    trainer = trainer.with_gen_model_input_fn(_model_inputs)
    trainer.with_training_hooks(hook)  # returns None in Tunix 0.1.7
    if sample:
        hook.bind(Decoder(trainer.model, tokenizer, models.config(desc)))

    saved = [trainer.checkpoint_manager.latest_step() or 0]

    def report_checkpoint() -> None:
        latest = trainer.checkpoint_manager.latest_step() or 0
        if latest > saved[0]:
            saved[0] = latest
            listener.on_checkpoint(latest, str(checkpoint_root / str(latest)))

    backend.after_step = report_checkpoint
    evals = (
        batches.eval_batches(eval_data, hp.batch_size, info.buckets)[:MAX_EVAL_BATCHES]
        if evaluating
        else None
    )
    try:
        with mesh:  # Tunix shards each batch over the mesh it runs in
            trainer.train(batch_stream(), evals)  # closes: final save, listeners cleared
    finally:
        best_manager.close()  # waits for an asynchronous best save
    backend.close()
    report_checkpoint()
    return TrainResult(saved[0], hook.stop, hook.best.step, hook.best.value)
