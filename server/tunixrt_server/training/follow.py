"""The training process of a worker group's process INDEX > 0 (training/group.py).

    python -m tunixrt_server.training.worker follow --distributed ADDRESS PROCESSES INDEX \
        --database-url URL --data-dir DIR

It joins process 0's coordinator, which process 0's training process starts
when it takes a run, learns which run that is, and trains the same steps with
it, reporting nothing: process 0 writes the run's events and decides when it
ends.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..storage.datasets import DatasetStore
from ..storage.db import create_engine
from ..storage.runs import RunStore
from . import checkpoints, child
from .run_inputs import best_so_far, load_examples

if TYPE_CHECKING:
    from .tunix_adapter import DataInfo

# How long a following process waits for a run before it starts waiting anew.
FOLLOW_WAIT_S = 300


class _Silent:
    """The listener of a following process: process 0 reports the run."""

    def on_data(self, info: DataInfo) -> None: ...
    def on_step(
        self,
        step: int,
        loss: float,
        learning_rate: float,
        tokens: int,
        grpo: dict[str, Any] | None = None,
    ) -> None: ...
    def on_eval(self, step: int, loss: float, exact: dict[str, Any] | None, best: bool) -> None: ...
    def on_checkpoint(self, step: int, path: str) -> None: ...


def follow(args: argparse.Namespace) -> int:
    """Process `index` > 0 of a worker group: join process 0's coordinator (the
    first run it trains), then train that run's steps in lockstep with it."""
    address = args.distributed[0]
    processes, index = map(int, args.distributed[1:])
    child.die_with_parent()  # SIGTERM's default: waiting to join, a stop ends it at once
    from . import tunix_adapter

    try:
        tunix_adapter.distributed.initialize(address, processes, index, FOLLOW_WAIT_S)
    except Exception as exc:
        print(f"no run to join at {address} yet: {exc}", file=sys.stderr)
        return 0
    # Joined: process 0 decides when the run ends, and its last checkpoint needs us.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    run_id, attempt = tunix_adapter.distributed.share_run("").split()
    engine = create_engine(args.database_url, pool_size=2)
    run = RunStore(engine).get(run_id)
    if run is None:
        raise LookupError(f"run {run_id} is gone")
    print(f"run {run_id} attempt {attempt}: process {index} of {processes}", file=sys.stderr)
    train_set, eval_set = load_examples(
        DatasetStore(engine), run.dataset_key, run.spec.hyperparameters.system_instruction
    )
    run_dir = checkpoints.run_dir(Path(args.data_dir), run_id)
    tunix_adapter.train(
        run.spec, run_dir, train_set, eval_set, _Silent(), lambda: False, best_so_far(run)
    )
    return 0
