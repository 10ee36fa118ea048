"""Watch every running training run at once, on one asyncio loop (tunixrt.aio).

    python scripts/monitor_all.py [--address 127.0.0.1:50051] [--exit-when-idle]

Polls ListTrainingRuns for QUEUED/RUNNING runs every few seconds, opens one
WatchTrainingRun stream per run it has not seen, and keeps a live table of
step, loss, eval loss and throughput. Ctrl-C cancels the streams and leaves
the runs alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from dataclasses import dataclass

from rich.live import Live
from rich.table import Table

from tunixrt import TunixRtError
from tunixrt.aio import AsyncClient
from tunixrt.v1 import training_pb2


@dataclass
class Row:
    dataset: str
    step: int = 0
    max_steps: int = 0
    loss: float = 0.0
    eval_loss: float = 0.0
    tokens_per_second: float = 0.0
    state: str = "queued"


def table(rows: dict[str, Row]) -> Table:
    out = Table("run", "dataset", "state", "step", "loss", "eval loss", "tok/s")
    for name, r in rows.items():
        out.add_row(
            name.removeprefix("trainingRuns/")[:8],
            r.dataset,
            r.state,
            f"{r.step}/{r.max_steps}",
            f"{r.loss:.3f}" if r.step else "",
            f"{r.eval_loss:.3f}" if r.eval_loss else "",
            f"{r.tokens_per_second:,.0f}",
        )
    return out


async def follow(rt: AsyncClient, name: str, row: Row) -> None:
    async for event in rt.watch_training_run(name):
        kind = event.WhichOneof("event")
        if kind == "step_metrics":
            m = event.step_metrics
            row.step, row.max_steps, row.loss = event.step, m.max_steps, m.loss
            row.tokens_per_second = m.tokens_per_second
        elif kind == "eval_metrics":
            row.eval_loss = event.eval_metrics.eval_loss
        elif kind == "state_change":
            state = training_pb2.TrainingRunState.Name(event.state_change.state)
            row.state = state.removeprefix("TRAINING_RUN_STATE_").lower()


async def monitor(address: str, exit_when_idle: bool) -> None:
    rows: dict[str, Row] = {}
    tasks: dict[str, asyncio.Task[None]] = {}
    async with AsyncClient(address) as rt:
        with Live(table(rows), refresh_per_second=4) as live:
            try:
                while True:
                    for state in ("QUEUED", "RUNNING"):
                        async for run in rt.list_training_runs(state=state):
                            if run.name not in tasks:
                                rows[run.name] = Row(run.dataset.removeprefix("datasets/"))
                                live.console.print(f"following {run.name} ({run.dataset})")
                                tasks[run.name] = asyncio.create_task(
                                    follow(rt, run.name, rows[run.name])
                                )
                    live.update(table(rows))
                    if exit_when_idle and tasks and all(t.done() for t in tasks.values()):
                        return
                    await asyncio.sleep(2.0)
            finally:
                for task in tasks.values():
                    task.cancel()
                live.update(table(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=os.environ.get("TUNIXRT_ADDRESS", "127.0.0.1:50051"))
    parser.add_argument("--exit-when-idle", action="store_true")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(monitor(args.address, args.exit_when_idle))
        except TunixRtError as exc:
            raise SystemExit(f"monitor: {exc}") from None


if __name__ == "__main__":
    main()
