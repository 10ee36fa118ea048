"""The baseline for bench_training.py: the same SFT written as a plain Tunix script.

    python scripts/plain_tunix_sft.py --steps 150 --out times.json

No server, no database, no worker process: the corpus, byte-tokenised, fed to
tunix.sft.PeftTrainer with the same model config, optimiser, batch shape,
completion-only loss, eval and checkpoint intervals the service uses. Step
times are taken the same way the service's worker takes them (wall time
between consecutive per-step loss reports from Tunix's metrics listener).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import optax
import orbax.checkpoint as ocp
from flax import nnx
from tunix.models.gemma3 import model as gemma3
from tunix.sft import metrics_logger, peft_trainer
from tunix.sft import utils as sft_utils

from _bench import CORPUS
from tunixrt_server.core.presets import PRESETS
from tunixrt_server.training import batches
from tunixrt_server.training.batches import Example
from tunixrt_server.training.tokenizer import ByteTokenizer


def examples() -> list[Example]:
    """The corpus, rendered as the service renders it (prompt turns, model turn)."""
    out = []
    for line in CORPUS.read_bytes().splitlines():
        doc = json.loads(line)
        steps = "\n".join(f"{n}. {s['content']}" for n, s in enumerate(doc["steps"], 1))
        prompt = f"<start_of_turn>user\n{doc['prompt']}<end_of_turn>\n<start_of_turn>model\n"
        answer = f"Reasoning:\n{steps}\nAnswer: {doc['final_answer']}<end_of_turn>"
        out.append(Example(prompt, answer))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--checkpoint-every", type=int, default=50)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    # The same numpy batching as the service (bucketed, length-grouped), no service.
    rows = examples()
    n_eval = len(rows) // 10
    tokenizer = ByteTokenizer()
    train = batches.encode(rows[n_eval:], tokenizer, args.seq_len)
    held_out = batches.encode(rows[:n_eval], tokenizer, args.seq_len)
    buckets = batches.bucket_lengths(train.lengths, args.seq_len, args.steps * args.batch_size)
    stream = batches.train_batches(train, args.batch_size, 0, lambda: False, buckets)
    evals = batches.eval_batches(held_out, args.batch_size, buckets)

    def model_inputs(b: dict[str, Any]) -> dict[str, Any]:
        return {
            "input_tokens": b["tokens"],
            "input_mask": b["completion_mask"],
            "positions": sft_utils.build_positions_from_mask(b["padding_mask"]),
            "attention_mask": sft_utils.make_causal_attn_mask(b["padding_mask"]),
        }

    times: list[float] = []

    class Clock:
        def log_scalar(self, event: str, value: Any, **_: Any) -> None:
            if event.endswith("/train/loss"):
                times.append(time.perf_counter())

        def close(self) -> None: ...

    clock = Clock()
    config = gemma3.ModelConfig(**PRESETS["tiny-gemma3"].config, param_dtype=jnp.float32)
    model = gemma3.Gemma3(config, rngs=nnx.Rngs(0))
    schedule = optax.warmup_cosine_decay_schedule(0.0, 1e-2, 10, args.steps, 1e-3)
    optimizer = optax.inject_hyperparams(optax.adamw)(learning_rate=schedule, weight_decay=0.0)
    with tempfile.TemporaryDirectory() as ckpt:
        training = peft_trainer.TrainingConfig(
            eval_every_n_steps=args.eval_every,
            max_steps=args.steps,
            checkpoint_root_directory=ckpt,
            checkpointing_options=ocp.CheckpointManagerOptions(
                save_interval_steps=args.checkpoint_every, max_to_keep=2
            ),
            metrics_logging_options=metrics_logger.MetricsLoggerOptions(
                log_dir=ckpt, backend_kwargs={"custom_backend": [lambda: clock]}
            ),
            pbar_description=None,
        )
        trainer = peft_trainer.PeftTrainer(model, optimizer, training)
        trainer.with_gen_model_input_fn(model_inputs)
        start = time.perf_counter()
        trainer.train(stream, evals)
    steps = [b - a for a, b in zip([start, *times], times, strict=False)]
    args.out.write_text(json.dumps({"step_seconds": steps}))


if __name__ == "__main__":
    main()
