"""Real-token throughput: bucketed, length-grouped batches vs. padding every batch to
max_seq_len (what training did before), on the corpus and on generator data.

    python scripts/bench_batching.py [--steps 80]

Each measurement is a fresh process training the default tiny-gemma3 preset
with the Tunix adapter itself, max_seq_len chosen from the data. "Real" tokens
are the non-padding ones. Throughput is over the steps after every batch shape
has compiled (step time under 3x the median); the wall time includes compiles.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _bench import CORPUS

CHILD = r"""
import json, sys, time
from pathlib import Path
from tunixrt.generators import generate
from tunixrt_server.core.rendering import completion_turn, prompt_turns
from tunixrt_server.core.runspec import Hyperparameters, Model, RunSpec
from tunixrt_server.training import batches
from tunixrt_server.training.batches import Example

mode, source, steps, out, corpus = sys.argv[1:6]
steps, out = int(steps), Path(out)
if mode == "padded":  # before: one shape, random batches
    batches.GROUP_WINDOW_BATCHES = 1
    batches.bucket_lengths = lambda lengths, max_seq_len, *rest: [max_seq_len]
if source == "corpus":
    docs = [json.loads(line) for line in open(corpus)]
else:
    docs = [*generate("high_card_duel", 2000, 1), *generate("arithmetic", 2000, 2)]
examples = [Example(prompt_turns(d["prompt"]), completion_turn(d["steps"], d["final_answer"]))
            for d in docs]
hp = Hyperparameters.resolve({"max_steps": steps, "eval_every_steps": -1,
                              "checkpoint_every_steps": 10**6})
from tunixrt_server.training import tunix_adapter

rows = []
class Listener:
    last = time.perf_counter()
    def on_data(self, info): rows.append({"max_seq_len": info.max_seq_len})
    def on_step(self, step, loss, lr, tokens):
        now = time.perf_counter()
        rows.append({"seconds": now - Listener.last, "tokens": tokens})
        Listener.last = now
    def on_eval(self, *a): pass
    def on_checkpoint(self, *a): pass

began = time.perf_counter()
spec = RunSpec(Model(), hp)
tunix_adapter.train(spec, out.parent / "run", examples, [], Listener(), lambda: False)
out.write_text(json.dumps({"rows": rows, "wall": time.perf_counter() - began}))
"""


def measure(mode: str, source: str, steps: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        subprocess.run(
            [sys.executable, "-c", CHILD, mode, source, str(steps), str(out), str(CORPUS)],
            check=True,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "JAX_PLATFORMS": "cpu"},
        )
        result = json.loads(out.read_text())
    steps_seen = [r for r in result["rows"] if "seconds" in r][1:]  # the first holds a compile
    median = statistics.median(r["seconds"] for r in steps_seen)
    steady = [r for r in steps_seen if r["seconds"] < 3 * median]
    return {
        "max_seq_len": result["rows"][0]["max_seq_len"],
        "tokens_per_s": sum(r["tokens"] for r in steady) / sum(r["seconds"] for r in steady),
        "wall_s": result["wall"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=80)
    args = parser.parse_args()
    for source in ("corpus", "generators"):
        padded = measure("padded", source, args.steps)
        bucketed = measure("bucketed", source, args.steps)
        print(
            f"{source:10s} max_seq_len {padded['max_seq_len']:4.0f}: real tokens/s padded "
            f"{padded['tokens_per_s']:7,.0f} -> bucketed {bucketed['tokens_per_s']:7,.0f} "
            f"({bucketed['tokens_per_s'] / padded['tokens_per_s']:.2f}x); wall for "
            f"{args.steps} steps incl. compiles {padded['wall_s']:.0f} s -> "
            f"{bucketed['wall_s']:.0f} s"
        )
        print(json.dumps({"source": source, "padded": padded, "bucketed": bucketed}))


if __name__ == "__main__":
    main()
