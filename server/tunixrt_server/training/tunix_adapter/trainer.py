"""A supervised fine-tuning run with Tunix's PeftTrainer.

Data: tokenized once, max_seq_len chosen from the train split when the run
left it 0, prompts cut from the left rather than answers from the right, batches
padded to a few bucket lengths. Evaluation: Tunix measures the eval loss, then
exact_match.EvalHook scores a fixed sample of the eval split; a better exact
match saves the parameters under `best/` (apart from the rotated checkpoints),
and an optional patience ends the run early. Progress goes to a Listener
(progress.py) and to TensorBoard.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optax
import orbax.checkpoint as ocp
from tunix.sft import peft_trainer
from tunix.sft import utils as sft_utils
from tunix.sft.checkpoint_manager import CheckpointManager

from ...core.presets import PRESETS
from ...core.runspec import AUTO, Hyperparameters, RunSpec
from .. import batches
from ..checkpoints import BEST, ROTATED
from ..eval_sample import exact_match_sample
from . import distributed, models, sharding
from .decoding import Decoder
from .exact_match import Best, EvalHook
from .progress import (
    CheckpointReports,
    DataInfo,
    Listener,
    ListenerBackend,
    logging_options,
    tensorboard,
)

# The eval loss reads as many held-out examples as exact match scores (eval_examples;
# the default 64 when exact match is off), in whole batches: 32 batches of 8 cost
# ~2.5 s an evaluation on 2 cores, as much as decoding the sample.
DEFAULT_EVAL_LOSS_EXAMPLES = 64


@dataclass
class TrainResult:
    saved_step: int  # the newest checkpoint
    stopped_early: bool = False  # exact match stopped improving (early_stopping_evals)
    best_step: int = 0
    best_exact_match: float = 0.0


def _model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """Attention and positions follow the padding; the loss follows the completion."""
    padding = batch["padding_mask"]
    return {
        "input_tokens": batch["tokens"],
        "input_mask": batch["completion_mask"],
        "positions": sft_utils.build_positions_from_mask(padding),
        "attention_mask": sft_utils.make_causal_attn_mask(padding),
    }


def optimizer_and_schedule(
    hp: Hyperparameters,
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """AdamW with linear warm-up then cosine decay to a tenth, clipped by global norm."""
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
    optimizer = optax.inject_hyperparams(adamw)(
        learning_rate=schedule, weight_decay=hp.weight_decay
    )
    return optimizer, schedule


def eval_loss_batches(eval_examples: int, batch_size: int) -> int:
    examples = eval_examples if eval_examples > 0 else DEFAULT_EVAL_LOSS_EXAMPLES
    return -(-examples // batch_size)


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
        batches.bucket_lengths(train_data.lengths, max_seq_len, hp.max_steps * hp.batch_size),
    )
    return train_data, eval_data, info


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
    desc = models.describe_once(
        spec, run_dir, lambda: (e.prompt + e.completion for e in train_examples)
    )
    tokenizer = models.load_tokenizer(desc)
    cap = PRESETS[desc.get("preset", spec.model.preset)].max_context
    train_data, eval_data, info = _prepare(spec, tokenizer, cap, train_examples, eval_examples)
    listener.on_data(info)
    mesh = sharding.make_mesh(spec.mesh, hp.batch_size)
    model = models.build(desc)
    sharding.shard(model, mesh)

    evaluating = hp.eval_every_steps > 0 and len(eval_data) > 0
    sample = exact_match_sample(eval_examples, hp.eval_examples, hp.seed) if evaluating else []
    budget = batches.answer_budget([len(tokenizer.encode(e.completion)) for e in sample])
    best_manager = CheckpointManager(
        str(run_dir / BEST), ocp.CheckpointManagerOptions(max_to_keep=1)
    )
    tokens_per_batch: dict[int, int] = {}
    backend = ListenerBackend(listener, lambda step: tokens_per_batch.pop(step, 0))
    # One set of curves per run, as Tunix logs.
    curves = tensorboard(run_dir, write=distributed.leader())
    hook = EvalHook(
        listener,
        backend,
        sample,
        budget,
        Best(*best_so_far),
        best_manager,
        hp.early_stopping_evals,
        bool(desc.get("lora")),
        curves.log_scalar,
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
        metrics_logging_options=logging_options(run_dir, backend, curves),
        pbar_description=None,
    )
    trainer = peft_trainer.PeftTrainer(model, optimizer_and_schedule(hp)[0], config)
    trainer = trainer.with_gen_model_input_fn(_model_inputs)
    trainer.with_training_hooks(hook)  # returns None in Tunix 0.1.7
    if sample:
        hook.bind(Decoder(trainer.model, tokenizer, models.config(desc)))

    report_checkpoint = CheckpointReports(trainer.checkpoint_manager, listener, checkpoint_root)
    backend.after_step = report_checkpoint
    evals = (
        batches.eval_batches(eval_data, hp.batch_size, info.buckets)[
            : eval_loss_batches(hp.eval_examples, hp.batch_size)
        ]
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
    return TrainResult(report_checkpoint.saved, hook.stop, hook.best.step, hook.best.value)
