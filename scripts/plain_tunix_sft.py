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
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx
from tunix.models.gemma3 import model as gemma3
from tunix.sft import metrics_logger, peft_trainer
from tunix.sft import utils as sft_utils

from _bench import CORPUS
from tunixrt_server.training.presets import PRESETS


def examples(seq_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = []
    for line in CORPUS.read_bytes().splitlines():
        doc = json.loads(line)
        steps = "\n".join(f"{n}. {s['content']}" for n, s in enumerate(doc["steps"], 1))
        prompt = f"<start_of_turn>user\n{doc['prompt']}<end_of_turn>\n<start_of_turn>model\n"
        answer = f"Reasoning:\n{steps}\nAnswer: {doc['final_answer']}<end_of_turn>"
        p, a = [1, *(b + 5 for b in prompt.encode())], [*(b + 5 for b in answer.encode()), 2]
        rows.append(((p + a)[:seq_len], len(p)))
    tokens = np.zeros((len(rows), seq_len), np.int32)
    completion = np.zeros((len(rows), seq_len), bool)
    for i, (ids, prompt_len) in enumerate(rows):
        tokens[i, : len(ids)] = ids
        completion[i, prompt_len : len(ids)] = True
    return tokens, tokens != 0, completion


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--checkpoint-every", type=int, default=50)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    tokens, padding, completion = examples(args.seq_len)
    n_eval = len(tokens) // 10
    rng = np.random.default_rng(0)

    def batch(rows: np.ndarray) -> dict[str, Any]:
        return {"tokens": tokens[rows], "padding": padding[rows], "completion": completion[rows]}

    def train_stream() -> Any:
        while True:
            order = rng.permutation(np.arange(n_eval, len(tokens)))
            for start in range(0, len(order) - args.batch_size + 1, args.batch_size):
                yield batch(order[start : start + args.batch_size])

    evals = [batch(np.arange(s, s + args.batch_size)) for s in range(0, n_eval, args.batch_size)][
        :-1
    ]

    def model_inputs(b: dict[str, Any]) -> dict[str, Any]:
        return {
            "input_tokens": b["tokens"],
            "input_mask": b["completion"],
            "positions": sft_utils.build_positions_from_mask(b["padding"]),
            "attention_mask": sft_utils.make_causal_attn_mask(b["padding"]),
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
        trainer.train(train_stream(), evals)
    steps = [b - a for a, b in zip([start, *times], times, strict=False)]
    args.out.write_text(json.dumps({"step_seconds": steps}))


if __name__ == "__main__":
    main()
