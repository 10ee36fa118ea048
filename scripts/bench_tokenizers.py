"""Bytes against the run's own subword tokenizer, on the demo's data, in one run.

    python scripts/bench_tokenizers.py [--steps 60] [--vocab-size 1024]

Through the service, as a user would: the demo's traces (2,000 High Card Duel,
2,000 one-operation arithmetic; seed 0) are imported and built into the demo's
stratified dataset, then two runs of the default preset train the same steps
with exact match off, one with TOKENIZER_KIND_BYTES and one with the default
SUBWORD. Reported per tokenizer: the max_seq_len chosen from the data, tokens
per example (mean and 99th percentile, per category, from the same renderings
the worker trains on), steady seconds per step from the run's own metrics, and
the subword run's figures as a ratio of the byte run's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from _bench import running_server
from demo import DATA
from tunixrt import Client
from tunixrt.generators import generate_jsonl
from tunixrt_server.core.rendering import completion_turn, prompt_turns
from tunixrt_server.core.runspec import DEFAULT_VOCAB_SIZE
from tunixrt_server.training import subword
from tunixrt_server.training.tokenizer import ByteTokenizer, SentencePieceTokenizer


def token_counts(tmp: Path, vocab_size: int) -> dict[str, dict[str, dict[str, float]]]:
    """Tokens per rendered example (prompt + completion), per category and tokenizer.
    The subword tokenizer is trained on all of the demo's traces here (the run trains
    on its train split: 90% of them), with the run's own trainer."""
    texts: dict[str, list[str]] = {}
    for n, (name, (count, options)) in enumerate(DATA.items()):
        for line in generate_jsonl(name, count, seed=n, **options):
            doc = json.loads(line)
            text = prompt_turns(doc["prompt"]) + completion_turn(doc["steps"], doc["final_answer"])
            texts.setdefault(doc["meta"].get("category", name), []).append(text)
    model = tmp / "tokenizer.model"
    subword.train((t for ts in texts.values() for t in ts), vocab_size, model)
    tokenizers: dict[str, ByteTokenizer | SentencePieceTokenizer] = {
        "bytes": ByteTokenizer(),
        "subword": SentencePieceTokenizer(str(model)),
    }
    out: dict[str, dict[str, dict[str, float]]] = {}
    for kind, tokenizer in tokenizers.items():
        for category, group in texts.items():
            lengths = np.asarray([len(tokenizer.encode(t)) + 2 for t in group])  # BOS, EOS
            out.setdefault(kind, {})[category] = {
                "mean": round(float(lengths.mean()), 1),
                "p99": float(np.quantile(lengths, 0.99, method="higher")),
            }
    return out


def train(rt: Client, dataset: str, tokenizer: str, steps: int) -> dict[str, float]:
    hp = {"max_steps": steps, "eval_every_steps": -1, "checkpoint_every_steps": steps}
    run = rt.create_training_run(dataset, tokenizer=tokenizer, hyperparameters=hp)
    for _ in rt.watch_training_run(run.name):
        pass
    done = rt.get_training_run(run.name)
    return {
        "max_seq_len": done.hyperparameters.max_seq_len,
        "seconds_per_step": round(done.metrics.seconds_per_step, 3),
        "tokens_per_second": round(done.metrics.tokens_per_second),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        counts = token_counts(Path(tmp), args.vocab_size)
        with running_server(Path(tmp) / "data") as (address, _), Client(address) as rt:
            for n, (name, (count, options)) in enumerate(DATA.items()):
                rt.import_jsonl(generate_jsonl(name, count, seed=n, **options))
            ds = rt.build_dataset(
                "demo", "v1", strategy="STRATIFIED", stratify_by="category", eval_fraction=0.1
            )
            runs = {kind: train(rt, ds.name, kind, args.steps) for kind in ("bytes", "subword")}
    for kind in ("bytes", "subword"):
        print(json.dumps({"tokenizer": kind, **runs[kind], "tokens_per_example": counts[kind]}))
    ratios = {
        "seconds_per_step": runs["subword"]["seconds_per_step"] / runs["bytes"]["seconds_per_step"],
        "max_seq_len": runs["subword"]["max_seq_len"] / runs["bytes"]["max_seq_len"],
        **{
            f"mean_tokens_{category}": counts["subword"][category]["mean"]
            / counts["bytes"][category]["mean"]
            for category in counts["bytes"]
        },
    }
    print(json.dumps({"subword_over_bytes": {k: round(v, 3) for k, v in ratios.items()}}))


if __name__ == "__main__":
    main()
