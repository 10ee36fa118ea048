"""Step time of one run spread over 1, 2 and 4 devices (TrainingRun.mesh fsdp=N).

    python scripts/bench_devices.py [--devices 1 2 4] [--preset tiny-gemma3] [--steps 40]

Each measurement is a fresh process training the preset with the Tunix adapter
on the corpus (batch 8, max_seq_len 256, no evaluation), its mesh all N
devices on fsdp. On a CPU host the N devices are XLA's emulated host devices
(--xla_force_host_platform_device_count=N) sharing the same cores, so this
measures what sharding costs there, not a speed-up; on an accelerator host
(--real) it uses the first N real devices. Steady step time is the median over
steps 2..N (step 1 holds the compile); the 1-device run is the baseline.
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
import jax
from tunixrt_server.core.rendering import completion_turn, prompt_turns
from tunixrt_server.core.runspec import Hyperparameters, Mesh, Model, RunSpec
from tunixrt_server.training import tunix_adapter
from tunixrt_server.training.batches import Example

devices, preset, steps, out, corpus = sys.argv[1:6]
docs = [json.loads(line) for line in open(corpus)]
examples = [Example(prompt_turns(d["prompt"]), completion_turn(d["steps"], d["final_answer"]))
            for d in docs]
hp = Hyperparameters.resolve({"max_steps": int(steps), "batch_size": 8, "max_seq_len": 256,
                              "eval_every_steps": -1, "checkpoint_every_steps": 10**6},
                             preset=preset)
seconds, tokens = [], []
class Listener:
    last = time.perf_counter()
    def on_data(self, info): pass
    def on_step(self, step, loss, lr, n):
        now = time.perf_counter()
        seconds.append(now - Listener.last); tokens.append(n)
        Listener.last = now
    def on_eval(self, *a): pass
    def on_checkpoint(self, *a): pass

spec = RunSpec(Model(preset), hp, mesh=Mesh(fsdp=int(devices)))
tunix_adapter.train(spec, Path(out).parent / "run", examples, [], Listener(), lambda: False)
Path(out).write_text(json.dumps({"seconds": seconds, "tokens": tokens,
                                 "platform": jax.devices()[0].platform}))
"""


def measure(devices: int, preset: str, steps: int, real: bool) -> dict[str, float | str]:
    env = {**os.environ}
    if not real:
        env |= {
            "JAX_PLATFORMS": "cpu",
            "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        subprocess.run(
            [sys.executable, "-c", CHILD, str(devices), preset, str(steps), str(out), str(CORPUS)],
            check=True,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        result = json.loads(out.read_text())
    step_s = statistics.median(result["seconds"][1:])
    tokens = statistics.median(result["tokens"][1:])
    return {"step_s": step_s, "tokens_per_s": tokens / step_s, "platform": result["platform"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--preset", default="tiny-gemma3")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--real", action="store_true", help="real accelerator devices")
    args = parser.parse_args()
    base = None
    for n in args.devices:
        result = measure(n, args.preset, args.steps, args.real)
        base = base or float(result["step_s"])
        print(
            f"{args.preset} on {n} {result['platform']} device(s): "
            f"{float(result['step_s']) * 1000:7.1f} ms/step, "
            f"{float(result['tokens_per_s']):8,.0f} tokens/s "
            f"({float(result['step_s']) / base:.2f}x the 1-device step time)"
        )
        print(json.dumps({"devices": n, "preset": args.preset, **result}))


if __name__ == "__main__":
    main()
