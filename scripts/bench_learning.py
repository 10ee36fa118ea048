"""Held-out accuracy of `make demo`'s journey over several seeds, and its time.

    python scripts/bench_learning.py [--seeds 0 1 2] [--steps N] [--hp NAME=VALUE ...]
                                     [--data GENERATOR=COUNT ...]

Each seed is the demo exactly (scripts/demo.py: same data sizes, same server
defaults, a fresh server) unless --hp or --data say otherwise: the seed picks
the generated traces, the split and the training order. Reported per category:
exact match of the best checkpoint (by exact match on the default 64-example
held-out sample during training) on every held-out example. Goals, on each
seed (not only on their mean): High Card Duel >= 95%, one-operation arithmetic
>= 50%, the whole journey <= 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from _bench import running_server
from demo import DATA, DEFAULT_STEPS, learn
from tunixrt import Client
from tunixrt_server.core.runspec import Hyperparameters

GOALS = {"game": 0.95, "arithmetic": 0.50}
MAX_MINUTES = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument(
        "--hp",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="hyperparameters to set instead of the server's defaults, e.g. learning_rate=1e-2",
    )
    parser.add_argument(
        "--data",
        nargs="*",
        default=[],
        metavar="GENERATOR=COUNT",
        help="the demo's generators in other amounts, e.g. arithmetic=4000 alone",
    )
    args = parser.parse_args()
    overrides = Hyperparameters.parse_overrides(dict(kv.split("=", 1) for kv in args.hp))
    data = {
        name: (int(count), DATA[name][1]) for name, count in (kv.split("=", 1) for kv in args.data)
    } or DATA
    results: dict[str, list[float]] = {}
    for seed in args.seeds:
        with (
            tempfile.TemporaryDirectory() as tmp,
            running_server(Path(tmp) / "data") as (address, _),
            Client(address) as rt,
        ):
            outcome = learn(rt, args.steps, seed, show=False, overrides=overrides, data=data)
        per = {name: acc.accuracy for name, acc in outcome.after.per_category.items()}
        for name, value in per.items():
            results.setdefault(name, []).append(value)
        results.setdefault("minutes", []).append(outcome.seconds / 60)
        print(
            json.dumps(
                {
                    "seed": seed,
                    "steps": args.steps,
                    "hyperparameters": overrides,
                    "best_step": outcome.run.best_checkpoint_step,
                    "accuracy": per,
                    "unfinished": outcome.after.unfinished_count,
                    "examples": outcome.after.example_count,
                    "minutes": round(outcome.seconds / 60, 1),
                }
            ),
            flush=True,
        )
    for name, values in results.items():
        goal = GOALS.get(name)
        scale, unit = (1, " min") if name == "minutes" else (100, "%")
        spread = (
            f"mean {statistics.fmean(values) * scale:.1f}{unit}, "
            f"min {min(values) * scale:.1f}, max {max(values) * scale:.1f}, "
            f"sd {statistics.pstdev(values) * scale:.1f}: "
            + ", ".join(f"{v * scale:.1f}" for v in values)
        )
        if goal:
            met = sum(v >= goal for v in values)
            note = f" (goal >= {goal:.0%} on each seed: {met} of {len(values)})"
        else:
            note = f" (goal <= {MAX_MINUTES} min)" if unit == " min" else ""
        print(f"{name:12s} {spread}{note}")


if __name__ == "__main__":
    main()
