"""Training overhead of the service vs. a plain Tunix script, and watcher latency.

    python scripts/bench_training.py [--steps 150] [--rounds 2]

Each round trains the default tiny-gemma3 config on the corpus twice, one
after the other on the same machine: once as scripts/plain_tunix_sft.py (the
baseline: PeftTrainer in a bare process) and once through the service
(CreateTrainingRun, worker process, events into SQLite, WatchTrainingRun).
Steady seconds/step is the median over steps 2..N (step 1 holds the XLA
compile); the mean is shown too, since it includes eval and checkpoint steps.
Latency is the time from the worker seeing a step's loss to a watcher
receiving that event (same clock: one machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import CORPUS, ROOT, running_server
from tunixrt import Client

# As the plain script: a fixed max_seq_len, eval loss only (no exact-match decoding).
HP = {"eval_every_steps": 50, "checkpoint_every_steps": 50, "max_seq_len": 256, "eval_examples": -1}


def plain(steps: int, workdir: Path) -> list[float]:
    out = workdir / "plain.json"
    script = ROOT / "scripts" / "plain_tunix_sft.py"
    subprocess.run(
        [sys.executable, str(script), "--steps", str(steps), "--out", str(out)],
        check=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
        stderr=subprocess.DEVNULL,
    )
    seconds: list[float] = json.loads(out.read_text())["step_seconds"]
    return seconds


def service(steps: int, workdir: Path) -> tuple[list[float], list[float]]:
    with running_server(workdir / "data") as (address, _pid), Client(address) as client:
        client.import_jsonl(CORPUS)
        client.build_dataset("bench", "v1", eval_fraction=0.1)
        run = client.create_training_run("bench-v1", hyperparameters={**HP, "max_steps": steps})
        seconds, lags = [], []
        for event in client.watch_training_run(run.name):
            if event.WhichOneof("event") == "step_metrics":
                lags.append(time.time() - event.time.ToMicroseconds() / 1e6)
                seconds.append(event.step_metrics.step_seconds)
        state = client.get_training_run(run.name)
        if len(seconds) != steps:
            raise RuntimeError(f"run ended early: {state.state_message}")
        return seconds, lags


def steady(seconds: list[float]) -> tuple[float, float]:
    return statistics.median(seconds[1:]), statistics.fmean(seconds[1:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    ratios, all_lags = [], []
    for round_no in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory() as tmp:
            base = steady(plain(args.steps, Path(tmp)))
            mine, lags = service(args.steps, Path(tmp))
        ours = steady(mine)
        all_lags += lags
        ratios.append(ours[0] / base[0])
        print(
            f"round {round_no}: plain Tunix {base[0]:.3f} s/step (mean {base[1]:.3f}) | "
            f"service {ours[0]:.3f} s/step (mean {ours[1]:.3f}) | "
            f"ratio {ours[0] / base[0]:.3f} (mean {ours[1] / base[1]:.3f})",
            flush=True,
        )
    all_lags.sort()

    def pick(q: float) -> float:
        return all_lags[min(len(all_lags) - 1, int(q * len(all_lags)))] * 1000

    print(
        f"\nsteady s/step ratio service/plain: {statistics.median(ratios):.3f} "
        f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)}; goal <= 1.05)\n"
        f"step event -> watcher latency: p50 {pick(0.5):.1f} ms, p95 {pick(0.95):.1f} ms, "
        f"max {all_lags[-1] * 1000:.1f} ms (goal < 200 ms)"
    )


if __name__ == "__main__":
    main()
