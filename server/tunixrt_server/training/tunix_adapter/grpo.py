"""A GRPO run with Tunix's RL stack: RLCluster (actor, reference and rollout on one
mesh, Tunix's vanilla sampler as the rollout engine unless the run names another)
and GRPOLearner (or its DAPO / Dr. GRPO variants).

Each step samples num_generations completions for batch_size prompts of the
train split, scores them with the run's rewards against each prompt's
final_answer, and updates the policy towards the completions that scored above
their group's mean, held near the starting model by the KL term. The run starts
from model.local_path (an SFT run's best checkpoint, else its newest, or an
exported model); checkpoints, the best checkpoint by exact match, resume, and
the run's events work as for SFT, so Generate, EvaluateRun and ExportModel read
a GRPO run like any other.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orbax.checkpoint as ocp
from tunix.rl import rl_cluster as rlc
from tunix.rl.grpo import dapo_learner, drgrpo_learner, grpo_learner
from tunix.rl.rollout import base_rollout
from tunix.sft.checkpoint_manager import CheckpointManager

from ...core.presets import PRESETS
from ...core.runspec import RunSpec
from .. import batches
from ..checkpoints import BEST, ROTATED
from ..eval_sample import exact_match_sample
from . import models, sharding
from .decoding import SHAPE_MULTIPLE, Decoder, eos_ids
from .exact_match import Best, EvalHook
from .grpo_progress import GrpoBackend
from .grpo_rewards import GrpoRewards
from .progress import (
    CheckpointReports,
    DataInfo,
    Lent,
    Listener,
    logging_options,
    tensorboard,
)
from .trainer import TrainResult, optimizer_and_schedule

# Tunix's RL cluster keeps the actor's checkpoints in {root}/actor; the run's
# checkpoints directory links there, so every reader of a run finds them as for SFT.
RL_DIR = "rl"


def _rotated_checkpoints(run_dir: Path) -> Path:
    actor = run_dir / RL_DIR / "actor"
    actor.mkdir(parents=True, exist_ok=True)
    link = run_dir / ROTATED
    if not link.is_symlink():
        link.symlink_to(Path(RL_DIR) / "actor", target_is_directory=True)
    return link


def _learner(spec: RunSpec, cluster: rlc.RLCluster, rewards: GrpoRewards) -> Any:
    g = spec.grpo
    common = dict(num_generations=g.num_generations, num_iterations=g.num_iterations)
    if g.loss == "dapo":  # no KL term by design; clip-higher at Tunix's default
        config: Any = dapo_learner.DAPOConfig(
            **common, epsilon=g.epsilon, epsilon_high=max(g.epsilon, 0.28), overlong_buffer=None
        )
        kind: Any = dapo_learner.DAPOLearner
    elif g.loss == "drgrpo":
        config = drgrpo_learner.DrGRPOConfig(**common, beta=g.kl, epsilon=g.epsilon)
        kind = drgrpo_learner.DrGRPOLearner
    else:
        config = grpo_learner.GRPOConfig(**common, beta=g.kl, epsilon=g.epsilon)
        kind = grpo_learner.GRPOLearner
    return kind(
        cluster,
        config,
        [rewards.reward],
        metric_fns=[rewards.metrics],
        data_shuffle_seed=spec.hyperparameters.seed,
    )


def _prompt_batches(
    examples: Sequence[batches.Example],
    batch_size: int,
    seed: int,
    first_step: int,
    should_stop: Callable[[], bool],
    before_batch: Callable[[int], None],
) -> Iterator[dict[str, np.ndarray]]:
    """Seeded epochs of prompts with their answers; step k's batch is the same
    whichever attempt draws it, so a resumed run goes on where it stopped."""
    orders: dict[int, np.ndarray] = {}
    n = len(examples)
    step = first_step
    while not should_stop():
        rows = []
        for position in range(step * batch_size, (step + 1) * batch_size):
            epoch, offset = divmod(position, n)
            if epoch not in orders:
                orders = {epoch: np.random.default_rng([seed, epoch]).permutation(n)}
            rows.append(examples[int(orders[epoch][offset])])
        step += 1
        before_batch(step)
        yield {
            "prompts": np.array([e.prompt for e in rows]),
            "answer": np.array([e.answer for e in rows]),
        }


def _prompts_that_fit(
    tokenizer: Any,
    examples: Sequence[batches.Example],
    cap: int,
    max_new_tokens: int,
    listener: Listener,
) -> tuple[list[batches.Example], int]:
    """The train examples whose prompt (with BOS) fits the model's context after the
    answer budget, and the rollout's prompt length: the longest of them rounded up
    to the sampler's shape multiple. Tunix's sampler would grow its buffers past
    the cache for a longer prompt rather than cut it, so those are left out, and
    counted as dropped."""
    room = cap - max_new_tokens
    lengths = [len(tokenizer.encode(e.prompt)) + 1 for e in examples]
    kept = [e for e, n in zip(examples, lengths, strict=True) if n <= room]
    if not kept:
        raise ValueError(
            f"no train prompt fits the context of {cap} tokens with max_new_tokens {max_new_tokens}"
        )
    longest = max(n for n in lengths if n <= room)
    prompt_len = min(math.ceil(longest / SHAPE_MULTIPLE) * SHAPE_MULTIPLE, room)
    total = prompt_len + max_new_tokens
    dropped = len(examples) - len(kept)
    listener.on_data(DataInfo(total, False, len(kept), 0, 0, dropped, [total]))
    return kept, prompt_len


def train_grpo(
    spec: RunSpec,
    run_dir: Path,
    train_examples: Sequence[batches.Example],
    eval_examples: Sequence[batches.Example],
    listener: Listener,
    should_stop: Callable[[], bool],
    best_so_far: tuple[int, float] = (0, 0.0),
) -> TrainResult:
    hp, g = spec.hyperparameters, spec.grpo
    desc = models.describe_once(spec, run_dir, lambda: ())
    tokenizer = models.load_tokenizer(desc)
    cap = PRESETS[desc.get("preset", spec.model.preset)].max_context
    prompts, prompt_len = _prompts_that_fit(
        tokenizer, train_examples, cap, g.max_new_tokens, listener
    )
    completions = hp.batch_size * g.num_generations
    mesh = sharding.make_mesh(spec.mesh, completions)
    actor = models.build(desc)
    sharding.shard(actor, mesh)
    reference = None
    if g.kl:  # the starting model, fixed; a LoRA actor's base is the same weights
        reference = models.build({**desc, "lora": None})
        sharding.shard(reference, mesh)

    rollout = base_rollout.RolloutConfig(
        max_tokens_to_generate=g.max_new_tokens,
        temperature=g.temperature,
        top_p=1.0,
        max_prompt_length=prompt_len,
        kv_cache_size=prompt_len + g.max_new_tokens,
        eos_tokens=eos_ids(tokenizer),
    )
    optimizer, schedule = optimizer_and_schedule(hp)
    backend = GrpoBackend(listener, lambda step: float(schedule(step)), completions)
    curves = tensorboard(run_dir)
    checkpoint_root = _rotated_checkpoints(run_dir)
    config = rlc.ClusterConfig(
        role_to_mesh={rlc.Role.ACTOR: mesh, rlc.Role.REFERENCE: mesh, rlc.Role.ROLLOUT: mesh},
        rollout_engine=g.rollout_engine,
        training_config=rlc.RLTrainingConfig(
            actor_optimizer=optimizer,
            eval_every_n_steps=10**9,  # exact match is this package's hook, below
            max_steps=hp.max_steps,
            checkpoint_root_directory=str(run_dir / RL_DIR),
            checkpointing_options=ocp.CheckpointManagerOptions(
                save_interval_steps=hp.checkpoint_every_steps, max_to_keep=2
            ),
            metrics_logging_options=logging_options(run_dir, backend, Lent(curves)),
            pbar_description=None,
        ),
        rollout_config=rollout,
    )
    cluster = rlc.RLCluster(
        actor=actor, reference=reference, tokenizer=tokenizer, cluster_config=config
    )
    rewards = GrpoRewards(g.rewards, g.num_generations)
    learner = _learner(spec, cluster, rewards)
    trainer = cluster.actor_trainer
    first_step = int(trainer.train_steps)  # restored from the newest checkpoint
    # Tunix tags rollout metrics with the cluster's global step, which a restore does
    # not bring back: continue it from the actor's, or a resumed run's rewards would
    # be filed under steps it has already taken (grpo_progress.py).
    cluster.global_steps = first_step

    evaluating = hp.eval_every_steps > 0 and bool(eval_examples)
    sample = exact_match_sample(eval_examples, hp.eval_examples, hp.seed) if evaluating else []
    best_manager = CheckpointManager(
        str(run_dir / BEST), ocp.CheckpointManagerOptions(max_to_keep=1)
    )
    hook = EvalHook(
        listener,
        backend,
        sample,
        g.max_new_tokens,
        Best(*best_so_far),
        best_manager,
        hp.early_stopping_evals,
        bool(desc.get("lora")),
        curves.log_scalar,
    )
    if sample:
        hook.bind(Decoder(trainer.model, tokenizer, models.config(desc)))
    evaluated = {first_step} if first_step else set()

    def evaluate(last: bool = False) -> None:
        """Exact match with the parameters as they are now, every eval_every_steps
        updates, before the first and after the last of max_steps (Tunix's RL
        trainer runs no eval hook here)."""
        step = int(trainer.train_steps)
        due = last or step % hp.eval_every_steps == 0
        if evaluating and due and step not in evaluated:
            evaluated.add(step)
            hook.on_eval_step_end(trainer, 0.0)

    report_checkpoint = CheckpointReports(trainer.checkpoint_manager, listener, checkpoint_root)

    def before_batch(step: int) -> None:
        # Drawn on the learner's data thread once the previous update is done.
        evaluate()
        # A new sampling key each step (None would reuse one), the same on a resume.
        rollout.seed = hp.seed * 1_000_003 + step
        rewards.batch_ready_at = time.perf_counter()

    backend.after_step = report_checkpoint

    def stop() -> bool:
        return hook.stop or should_stop()

    data = _prompt_batches(prompts, hp.batch_size, hp.seed, first_step, stop, before_batch)
    try:
        if first_step < hp.max_steps and not stop():
            with mesh:
                learner.train(data)  # closes the cluster: final save
            if not stop():  # reached max_steps: a cancel or a stop does not wait for it
                evaluate(last=True)
        else:
            cluster.close()
    finally:
        best_manager.close()
    backend.close()
    curves.close()
    report_checkpoint()
    return TrainResult(report_checkpoint.saved, hook.stop, hook.best.step, hook.best.value)
