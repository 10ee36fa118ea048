"""GRPO after the demo's SFT: held-out exact match per category before and after,
over several seeds, and the minutes GRPO takes.

    python scripts/bench_rl.py [--seeds 0 1 2] [--grpo-steps N] [--keep DIR]
                               [--grpo NAME=VALUE ...] [--hp NAME=VALUE ...]

One server: the demo's journey trains the SFT model (scripts/demo.py, seed 0,
its defaults). A second dataset holds the demo's arithmetic traces alone,
built with the demo's split (the split is per category and seeded, so its
held-out arithmetic traces are exactly the demo's; checked). Each seed starts a
GRPO run from the SFT run's best checkpoint on that dataset's train prompts
(the rewards score each completion against its trace's final_answer), and
EvaluateRun scores the GRPO run's best checkpoint on every held-out example of
the demo's dataset, both categories. --keep DIR keeps the server's
data there and reuses an SFT run it already holds. Goals on 2 CPU cores:
arithmetic +15 points within 10 minutes of GRPO; High Card Duel down by at
most 2 points.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _bench import running_server
from demo import DEFAULT_STEPS, learn
from tunixrt import Client
from tunixrt.v1 import training_pb2
from tunixrt_server.core.runspec import Hyperparameters

GOAL_GAIN = {"arithmetic": 0.15}
MAX_DROP = {"game": 0.02}
MAX_MINUTES = 10


def _per_category(evaluation: training_pb2.Evaluation) -> dict[str, float]:
    return {name: acc.accuracy for name, acc in evaluation.per_category.items()}


def _sft(rt: Client, steps: int) -> training_pb2.TrainingRun:
    """The demo's SFT run: one already in the data dir (--keep), or a new one."""
    for run in rt.list_training_runs('state = "SUCCEEDED"'):
        if run.method != training_pb2.TRAINING_METHOD_GRPO:
            return run
    return learn(rt, steps, seed=0, show=False).run


def _parse(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        name, _, text = pair.partition("=")
        out[name] = float(text) if any(c in text for c in ".e") else int(text)
    return out


def _arithmetic(rt: Client, demo: str) -> str:
    """The demo's arithmetic traces with the demo's split (checked, not assumed)."""
    key = "arith-v1"
    if not any(d.dataset_key == key for d in rt.list_datasets()):
        rt.build_dataset(
            "arith",
            "v1",
            filter='category = "arithmetic"',
            strategy="STRATIFIED",
            stratify_by="category",
            eval_fraction=0.1,
            seed=0,
        )
    arith = {i.trace_id for i in rt.list_dataset_items(key, split="EVAL")}
    held = rt.list_dataset_items(demo, split="EVAL")
    demo_arith = {i.trace_id for i in held} & {
        i.trace_id for i in rt.list_dataset_items(key, split="ALL")
    }
    assert arith == demo_arith, "the arithmetic split differs from the demo's"
    return f"datasets/{key}"


def _grpo(
    rt: Client, sft: training_pb2.TrainingRun, seed: int, args: argparse.Namespace
) -> dict[str, Any]:
    """One GRPO run from the SFT run: its figures, as one JSON line."""
    began = time.perf_counter()
    run = rt.create_training_run(
        args.prompts,
        local_path=sft.name,
        method="grpo",
        hyperparameters={"max_steps": args.grpo_steps, "seed": seed, **args.hp},
        grpo=args.grpo or None,
        rewards=args.reward,
        labels={"bench": "rl"},
    )
    seen = [
        e.step_metrics.grpo.reward_mean
        for e in rt.watch_training_run(run.name)
        if e.HasField("step_metrics")
    ]
    done = rt.get_training_run(run.name)
    minutes = (time.perf_counter() - began) / 60
    choice = "best" if done.best_checkpoint_step else "latest"
    tenth = max(len(seen) // 10, 1)
    return {
        "seed": seed,
        "run": done.name,
        "state": training_pb2.TrainingRunState.Name(done.state),
        "grpo": {f.name: v for f, v in done.grpo.ListFields() if f.name != "rewards"},
        "rewards": args.reward,
        "learning_rate": done.hyperparameters.learning_rate,
        "batch_size": done.hyperparameters.batch_size,
        "steps": done.metrics.step,
        "best_step": done.best_checkpoint_step,
        "reward_first_tenth": round(statistics.mean(seen[:tenth]), 3) if seen else 0.0,
        "reward_last_tenth": round(statistics.mean(seen[-tenth:]), 3) if seen else 0.0,
        "seconds_per_step": round(done.metrics.seconds_per_step, 2),
        "accuracy": _per_category(
            rt.evaluate_run(done.name, checkpoint=choice, dataset=sft.dataset)
        ),
        "minutes": round(minutes, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sft-steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--grpo-steps", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="keep the server's data dir here, and reuse it")
    parser.add_argument("--grpo", nargs="*", default=[], metavar="NAME=VALUE")
    parser.add_argument("--hp", nargs="*", default=[], metavar="NAME=VALUE")
    parser.add_argument("--reward", nargs="*", default=["exact_match=1"], metavar="NAME=WEIGHT")
    args = parser.parse_args()
    args.hp = Hyperparameters.parse_overrides(dict(kv.split("=", 1) for kv in args.hp))
    args.grpo = _parse(args.grpo)
    args.reward = {k: float(v) for k, v in (kv.split("=", 1) for kv in args.reward)}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.keep or Path(tmp) / "data"
        with running_server(data_dir) as (address, _), Client(address) as rt:
            sft = _sft(rt, args.sft_steps)
            args.prompts = _arithmetic(rt, sft.dataset)
            before = _per_category(rt.evaluate_run(sft.name, checkpoint="best"))
            print(json.dumps({"sft": sft.name, "accuracy": before}), flush=True)
            for seed in args.seeds:
                results.append(_grpo(rt, sft, seed, args))
                print(json.dumps(results[-1]), flush=True)
    gains: dict[str, list[float]] = {}
    for result in results:
        for name, value in result["accuracy"].items():
            gains.setdefault(name, []).append(round(value - before.get(name, 0.0), 3))
    minutes = [r["minutes"] for r in results]
    print(json.dumps({"gains": gains, "minutes": minutes}))
    for name, goal in GOAL_GAIN.items():
        met = all(g >= goal for g in gains.get(name, [0.0]))
        print(f"{name}: +{goal:.0%} on each seed: {'met' if met else 'NOT met'}")
    for name, drop in MAX_DROP.items():
        met = all(g >= -drop for g in gains.get(name, [0.0]))
        print(f"{name}: at most -{drop:.0%}: {'met' if met else 'NOT met'}")
    print(f"<= {MAX_MINUTES} min: {'met' if max(minutes) <= MAX_MINUTES else 'NOT met'}")


if __name__ == "__main__":
    main()
