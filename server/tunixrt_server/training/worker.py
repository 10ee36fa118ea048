"""The training worker: one process per run attempt.

    python -m tunixrt_server.training.worker train RUN_ID ATTEMPT --database-url URL --run-dir DIR
    python -m tunixrt_server.training.worker follow ...   (training/follow.py)

A separate process so that an XLA compile, an OOM or a segfault never touches
the server. `train` writes its events straight into the database (the source
of truth watchers read; training/reporter.py) and pokes the server on its
original stdout after each write so it can wake watchers at once. Stop requests:

    SIGUSR1  cancel (or cancel_requested set in the database) -> CANCELLED
    SIGTERM  the server is stopping                           -> FAILED, resumable
    parent gone (server killed)                               -> FAILED, resumable

Each ends the data iterator, which makes Tunix stop and save a final checkpoint.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TextIO

from ..core.grpo_spec import GRPO
from ..core.run_state import RunState
from ..storage.datasets import DatasetStore
from ..storage.db import create_engine, database_unreachable, disk_full
from ..storage.runs import RunStore
from . import child
from .reporter import OUTAGE_LIMIT_S, Reporter, Stop, notify
from .run_inputs import best_so_far, load_examples

# How long process 0 of a worker group waits for the others to join a run.
JOIN_TIMEOUT_S = 120


def _die_with_parent(stop: Stop, parent: int) -> None:
    """Linux: SIGTERM when the server process dies, even by SIGKILL. Elsewhere (and
    for a server that died before this call) the writer thread notices within 0.5 s."""
    child.die_with_parent()
    if os.getppid() != parent:
        stop.set("server gone")


def train(args: argparse.Namespace, channel: TextIO) -> int:
    parent = args.parent_pid
    stop = Stop()
    _die_with_parent(stop, parent)
    signal.signal(signal.SIGUSR1, lambda *_: stop.set("cancel"))
    signal.signal(
        signal.SIGTERM,
        lambda *_: stop.set("shutdown" if os.getppid() == parent else "server gone"),
    )
    engine = create_engine(args.database_url, pool_size=2)
    runs = RunStore(engine)
    run = runs.get(args.run_id)
    if run is None or run.attempt != args.attempt or run.state != RunState.RUNNING:
        print(f"run {args.run_id} attempt {args.attempt} is not mine to train", file=sys.stderr)
        return 3
    spec = run.spec
    reporter = Reporter(runs, run, stop, channel, parent)

    def end(state: int, message: str) -> None:
        reporter.close()
        step = int(reporter.metrics.get("step", 0))
        try:
            _retry_while_unreachable(
                lambda: runs.transition(
                    run.id,
                    state,
                    message,
                    from_states=(RunState.RUNNING,),
                    owner_attempt=run.attempt,
                    step=step,
                    events_before=[(step, "summary", reporter.metrics, 0)],
                    metrics=reporter.metrics,
                    checkpoint_step=reporter.checkpoint_step,
                    best_checkpoint_step=reporter.best_checkpoint_step,
                )
            )
        except Exception as exc:
            # The server records the run FAILED with this log's last line instead.
            child.log_exception()
            child.log(f"could not record the run's end ({message}): {exc}")
            if disk_full(exc):
                child.exit_disk_full()
            raise SystemExit(1) from None
        notify(channel)

    try:
        from . import tunix_adapter  # JAX and Tunix load here, never in the server

        if args.distributed and spec.method == GRPO:
            raise ValueError(
                "GRPO runs on one host (actor, reference and rollout share its devices); "
                "run it on a standalone worker, not a worker group"
            )
        if args.distributed:
            _lead(tunix_adapter.distributed, args.distributed, f"{run.id} {run.attempt}")
        hp = spec.hyperparameters
        train_set, eval_set = load_examples(
            DatasetStore(engine), run.dataset_key, hp.system_instruction
        )
        if not train_set:
            raise ValueError(f"dataset {run.dataset_key!r} has no train split")
        method = tunix_adapter.train_grpo if spec.method == GRPO else tunix_adapter.train
        result = method(
            spec, Path(args.run_dir), train_set, eval_set, reporter, stop, best_so_far(run)
        )
    except BaseException as exc:
        child.log_exception()
        why = "the disk is full: " if disk_full(exc) else ""
        end(RunState.FAILED, f"{why}{type(exc).__name__}: {exc}"[:2000])
        return 1
    reporter.checkpoint_step = max(reporter.checkpoint_step, result.saved_step)
    step = int(reporter.metrics.get("step", 0))
    where = f"at step {step}; checkpoint step {reporter.checkpoint_step} kept"
    if stop.reason == "cancel":
        end(RunState.CANCELLED, f"cancelled {where}")
    elif stop.reason in ("shutdown", "server gone"):
        end(
            RunState.FAILED,
            f"interrupted: the server stopped {where}; ResumeTrainingRun continues it",
        )
    elif stop.reason == "database":
        end(
            RunState.FAILED,
            f"stopped: the database took no events for {OUTAGE_LIMIT_S:.0f} s "
            f"({reporter.outage}) {where}; ResumeTrainingRun continues it",
        )
    elif stop.reason == "lost":
        reporter.close()
    elif step >= hp.max_steps:
        end(RunState.SUCCEEDED, f"finished {hp.max_steps} steps")
    elif result.stopped_early:
        end(
            RunState.SUCCEEDED,
            f"stopped early at step {step}: exact match did not improve in "
            f"{hp.early_stopping_evals} evaluations; best {result.best_exact_match:.1%} "
            f'at step {result.best_step} (checkpoint "best")',
        )
    else:
        end(RunState.FAILED, f"training stopped early {where}")
    return 0


def _retry_while_unreachable(write: Callable[[], object]) -> None:
    """The run's last write, again while the database cannot be reached (up to the
    outage limit): a restart of the database must not lose how a run ended."""
    deadline = time.monotonic() + OUTAGE_LIMIT_S
    while True:
        try:
            write()
            return
        except Exception as exc:
            if not database_unreachable(exc) or time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _lead(distributed: ModuleType, group: list[str], run: str) -> None:
    """Start the group's coordinator, wait for the other processes, tell them the run."""
    address, processes = group[0], int(group[1])
    try:
        distributed.initialize(address, processes, 0, JOIN_TIMEOUT_S)
    except Exception as exc:
        raise RuntimeError(
            f"the worker group's other {processes - 1} process(es) did not join at "
            f"{address} within {JOIN_TIMEOUT_S} s: {exc}"
        ) from None
    distributed.share_run(run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tunixrt-worker")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("run_id")
    t.add_argument("attempt", type=int)
    t.add_argument("--database-url", required=True)
    t.add_argument("--run-dir", required=True)
    t.add_argument("--parent-pid", type=int, default=os.getppid())
    group = ("ADDRESS", "PROCESSES", "INDEX")
    t.add_argument("--distributed", nargs=3, metavar=group, help="lead a worker group")
    f = sub.add_parser("follow")
    f.add_argument("--distributed", nargs=3, metavar=group, required=True)
    f.add_argument("--database-url", required=True)
    f.add_argument("--data-dir", required=True)
    args = parser.parse_args(argv)
    if args.command == "follow":
        from .follow import follow

        return follow(args)
    return train(args, child.server_channel())


if __name__ == "__main__":
    sys.exit(main())
