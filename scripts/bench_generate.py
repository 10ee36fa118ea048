"""Generate and EvaluateRun latency: a cold call (a new inference process: JAX import,
restore, compile) against warm calls to the run's resident inference worker.

    python scripts/bench_generate.py [--warm-calls 20] [--steps 30]

Two short runs are trained on generated High Card Duel + arithmetic traces. The
server keeps one inference worker (max_inference_workers 1), so calls that
alternate between the two runs are all cold: what every call cost before
workers stayed resident. Warm calls repeat one run. Evaluation scores 200
held-out examples with the answer budget taken from the data.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _bench import running_server
from tunixrt import Client
from tunixrt.generators import generate_jsonl

PROMPT = "What is 15 + 27?"


def timed(call: Callable[[], object]) -> tuple[float, object]:
    began = time.perf_counter()
    result = call()
    return time.perf_counter() - began, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-calls", type=int, default=20)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    os.environ["TUNIXRT_MAX_INFERENCE_WORKERS"] = "1"  # the server process inherits it
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_server(Path(tmp) / "data") as (address, _),
        Client(address) as rt,
    ):
        rt.import_jsonl(generate_jsonl("high_card_duel", 1000, seed=1))
        rt.import_jsonl(generate_jsonl("arithmetic", 1000, seed=2))
        rt.build_dataset(
            "gen", "v1", strategy="STRATIFIED", stratify_by="category", eval_fraction=0.1
        )
        hp = {"max_steps": args.steps, "eval_every_steps": -1}
        runs = [rt.create_training_run("gen-v1", hyperparameters=hp).name for _ in range(2)]
        for run in runs:
            for _ in rt.watch_training_run(run):
                pass

        def generate(run: str) -> Callable[[], object]:
            return lambda: rt.generate(run, [PROMPT], max_new_tokens=64).generations[0].text

        cold = [timed(generate(runs[n % 2])) for n in range(6)]
        warm = [timed(generate(runs[1])) for _ in range(args.warm_calls)]
        same = all(text == cold[1][1] for _, text in warm)
        cold_s = sorted(s for s, _ in cold)
        warm_s = sorted(s for s, _ in warm)

        def evaluate() -> object:
            return rt.evaluate_run(runs[0], max_examples=200)

        eval_cold, _ = timed(evaluate)  # runs[0]'s worker was evicted by the warm calls
        eval_warm = [timed(evaluate) for _ in range(3)]
        budget = eval_warm[0][1].max_new_tokens  # type: ignore[attr-defined]

    p50_cold, p50_warm = statistics.median(cold_s), statistics.median(warm_s)
    print(f"Generate, 1 prompt, 64 new tokens (tiny-gemma3, {args.steps}-step runs):")
    print(f"  cold (new inference process): p50 {p50_cold:.3f} s  (n={len(cold_s)})")
    print(
        f"  warm (resident worker):       p50 {p50_warm:.3f} s, "
        f"p95 {warm_s[int(len(warm_s) * 0.95) - 1]:.3f} s  (n={len(warm_s)}; goal p50 <= 0.3 s)"
    )
    print(f"  speedup cold/warm:            {p50_cold / p50_warm:.0f}x; warm text == cold: {same}")
    print(f"EvaluateRun, 200 held-out examples, answer budget {budget} tokens from the data:")
    print(
        f"  cold {eval_cold:.1f} s; warm median {statistics.median(s for s, _ in eval_warm):.1f} s"
    )
    print("  (goal warm <= 20 s)")


if __name__ == "__main__":
    main()
