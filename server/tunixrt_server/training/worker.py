"""The training worker: one process per run attempt.

    python -m tunixrt_server.training.worker train RUN_ID ATTEMPT --database-url URL --run-dir DIR
    python -m tunixrt_server.training.worker follow ...   (training/follow.py)

A separate process so that an XLA compile, an OOM or a segfault never touches
the server. `train` writes its events straight into the database (the source
of truth watchers read) and prints each new sequence number on its original
stdout so the server can wake watchers at once. Stop requests:

    SIGUSR1  cancel (or cancel_requested set in the database) -> CANCELLED
    SIGTERM  the server is stopping                           -> FAILED, resumable
    parent gone (server killed)                               -> FAILED, resumable

Each ends the data iterator, which makes Tunix stop and save a final checkpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TextIO

from ..convert import RunState
from ..rendering import completion_turn, prompt_turns
from ..selection import EVAL, TRAIN
from ..storage.datasets import DatasetStore
from ..storage.db import create_engine, disk_full
from ..storage.run_events import NewEvent
from ..storage.runs import RunStore, StoredRun
from ..storage.traces import now_us
from . import child
from .batches import Example

if TYPE_CHECKING:
    from .tunix_adapter import DataInfo

# A closing worker retries unwritten events this long (a full disk, a lost database).
CLOSE_RETRY_S = 10.0
# How long process 0 of a worker group waits for the others to join a run.
JOIN_TIMEOUT_S = 120


def load_examples(
    store: DatasetStore, dataset_key: str, system: str
) -> tuple[list[Example], list[Example]]:
    """The train and eval splits, rendered as the tunix_sft export renders them."""
    dataset = store.get(dataset_key)
    if dataset is None:
        raise LookupError(f"dataset {dataset_key!r} no longer exists")
    splits: dict[int, list[Example]] = {
        split: [
            Example(
                prompt_turns(row.prompt, system),
                completion_turn(json.loads(row.steps_json), row.final_answer),
                row.final_answer,
                str(row.meta.get("category", "")),
            )
            for row in store.rows(dataset.seq, split, meta=True)
        ]
        for split in (TRAIN, EVAL)
    }
    return splits[TRAIN], splits[EVAL]


def best_so_far(run: StoredRun) -> tuple[int, float]:
    """(step, exact match) of the run's best checkpoint before this attempt."""
    return run.best_checkpoint_step, float(run.metrics.get("best_exact_match", 0.0))


class Stop:
    """Why training should end early; set from signal handlers and the writer thread."""

    def __init__(self) -> None:
        self.reason = ""  # "" | "cancel" | "shutdown" | "server gone" | "lost"

    def set(self, reason: str) -> None:
        self.reason = self.reason or reason

    def __call__(self) -> bool:
        return bool(self.reason)


class Reporter:
    """Tunix listener -> run metrics + events, written by a background thread so the
    training loop only pays for a queue put."""

    def __init__(
        self, store: RunStore, run: StoredRun, stop: Stop, channel: TextIO, parent: int
    ) -> None:
        self._store, self._run, self._stop, self._notify = store, run, stop, channel
        self._parent = parent
        self._queue: queue.Queue[NewEvent | None] = queue.Queue()
        self.metrics: dict[str, Any] = dict(run.metrics)
        self.checkpoint_step = run.checkpoint_step
        self.best_checkpoint_step = run.best_checkpoint_step
        self.max_steps = run.spec.hyperparameters.max_steps
        self._last_time = time.perf_counter()
        self._steps_seen = 0
        self._steady: list[tuple[float, int]] = []  # (seconds, tokens) after the first step
        self._thread = threading.Thread(target=self._write_loop, name="events", daemon=True)
        self._thread.start()

    # -- tunix_adapter.Listener --

    def on_data(self, info: DataInfo) -> None:
        if info.from_data:  # the run shows the value used, and a resume reuses it
            spec = self._run.spec.with_max_seq_len(info.max_seq_len)
            self._store.record_spec(self._run.id, self._run.attempt, spec)
        self.metrics["truncated_examples"] = info.truncated
        self.metrics["dropped_examples"] = info.dropped
        payload = {
            "max_seq_len": info.max_seq_len,
            "max_seq_len_from_data": info.from_data,
            "train_examples": info.train_examples,
            "eval_examples": info.eval_examples,
            "truncated_examples": info.truncated,
            "dropped_examples": info.dropped,
            "bucket_lengths": info.buckets,
        }
        self._queue.put((0, "data_prepared", payload, now_us()))
        kept = info.train_examples + info.dropped
        for count, reason, what in (
            (info.truncated, "EXAMPLES_TRUNCATED", "had the start of their prompt cut"),
            (info.dropped, "EXAMPLES_DROPPED", "were left out: their answer alone is longer"),
        ):
            if count:
                message = (
                    f"{count} of {kept} train examples {what} than max_seq_len {info.max_seq_len}"
                    if reason == "EXAMPLES_DROPPED"
                    else f"{count} of {kept} train examples are longer than max_seq_len "
                    f"{info.max_seq_len} and {what}; their answers are whole"
                )
                hint = "; raise max_seq_len to keep them whole"
                self._queue.put((0, "warning", {"reason": reason, "message": message + hint}, 0))

    def on_step(self, step: int, loss: float, learning_rate: float, tokens: int) -> None:
        now = time.perf_counter()
        seconds, self._last_time = now - self._last_time, now
        self._steps_seen += 1
        if self._steps_seen > 1:  # the first step of an attempt includes the XLA compile
            self._steady.append((seconds, tokens))
        m = self.metrics
        m["step"] = step
        m["train_loss"] = loss
        m.setdefault("initial_train_loss", loss)
        if self._steady:
            total_s = sum(s for s, _ in self._steady)
            m["seconds_per_step"] = total_s / len(self._steady)
            m["tokens_per_second"] = sum(t for _, t in self._steady) / total_s
        payload = {
            "loss": loss,
            "learning_rate": learning_rate,
            "tokens_per_second": tokens / seconds if seconds > 0 else 0.0,
            "step_seconds": seconds,
            "max_steps": self.max_steps,
        }
        self._queue.put((step, "step_metrics", payload, now_us()))

    def on_eval(self, step: int, loss: float, exact: dict[str, Any] | None, best: bool) -> None:
        m = self.metrics
        m["eval_loss"] = loss
        m.setdefault("initial_eval_loss", loss)
        payload: dict[str, Any] = {"eval_loss": loss}
        if exact is not None:
            m["exact_match"] = exact["accuracy"]
            payload |= {
                "exact_match": exact["accuracy"],
                "example_count": exact["example_count"],
                "correct_count": exact["correct_count"],
                "unfinished_count": exact["unfinished_count"],
                "per_category": exact["per_category"],
                "best": best,
                "generation_seconds": exact["generation_seconds"],
            }
        if best:
            m["best_exact_match"] = exact["accuracy"] if exact else 0.0
            self.best_checkpoint_step = step
        self._queue.put((step, "eval_metrics", payload, now_us()))

    def on_checkpoint(self, step: int, path: str) -> None:
        self.checkpoint_step = step
        self._queue.put((step, "checkpoint_saved", {"path": path}, now_us()))

    # -- writing --

    def _write_loop(self) -> None:
        pending: list[NewEvent] = []
        done = False
        failing_since: float | None = None
        while True:
            try:
                item = self._queue.get(timeout=0.5)
                while True:
                    if item is None:
                        done = True
                    else:
                        pending.append(item)
                    item = self._queue.get_nowait()
            except queue.Empty:
                pass
            if os.getppid() != self._parent:
                self._stop.set("server gone")
            try:
                cancel = self._store.record_progress(
                    self._run.id,
                    self._run.attempt,
                    pending,
                    self.metrics,
                    self.checkpoint_step,
                    self.best_checkpoint_step,
                )
            except Exception as exc:
                child.log_exception()
                failing_since = failing_since or time.monotonic()
                if done and time.monotonic() - failing_since > CLOSE_RETRY_S:
                    # The run still ends: its final transition (or the server) says why.
                    child.log(f"dropping {len(pending)} unwritten events: {exc}")
                    return
                time.sleep(0.5)
                continue  # the same events go again with the next batch, in order
            failing_since = None
            if cancel is None:
                self._stop.set("lost")  # another attempt or a user owns the run now
            elif cancel:
                self._stop.set("cancel")
            if pending:
                pending = []
                notify(self._notify)
            if done:
                return

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()


def notify(channel: TextIO) -> None:
    """Wake the server's watchers; a server that went away is noticed elsewhere."""
    with contextlib.suppress(OSError):
        channel.write("\n")
        channel.flush()


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
            runs.transition(
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

        if args.distributed:
            _lead(tunix_adapter.distributed, args.distributed, f"{run.id} {run.attempt}")
        hp = spec.hyperparameters
        train_set, eval_set = load_examples(
            DatasetStore(engine), run.dataset_key, hp.system_instruction
        )
        if not train_set:
            raise ValueError(f"dataset {run.dataset_key!r} has no train split")
        result = tunix_adapter.train(
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
