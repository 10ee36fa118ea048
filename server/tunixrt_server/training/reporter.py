"""A training process's report: what Tunix tells it (data prepared, steps,
evaluations, checkpoints) becomes the run's metrics and events in the database,
written by a background thread so the training loop only pays for a queue put,
and the server is poked after each write so its watchers hear at once."""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from typing import TYPE_CHECKING, Any, TextIO

from ..storage.run_events import NewEvent
from ..storage.runs import RunStore, StoredRun
from ..storage.traces import now_us
from . import child

if TYPE_CHECKING:
    from .tunix_adapter import DataInfo

# A database that cannot take the run's events for this long (lost, or a full disk)
# stops the run, which ends FAILED and resumable; a shorter outage only delays its
# events, which are then written in order, none lost. A closing worker retries its
# last events as long.
OUTAGE_LIMIT_S = 60.0
CLOSE_RETRY_S = OUTAGE_LIMIT_S


class Stop:
    """Why training should end early; set from signal handlers and the writer thread."""

    def __init__(self) -> None:
        self.reason = ""  # "" | "cancel" | "shutdown" | "server gone" | "lost" | "database"

    def set(self, reason: str) -> None:
        self.reason = self.reason or reason

    def __call__(self) -> bool:
        return bool(self.reason)


class Reporter:
    """Tunix listener -> run metrics + events (the module's docstring says how)."""

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
        self.outage = ""  # why the database was given up on, if it was
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

    def on_step(
        self,
        step: int,
        loss: float,
        learning_rate: float,
        tokens: int,
        grpo: dict[str, Any] | None = None,
    ) -> None:
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
        payload: dict[str, Any] = {
            "loss": loss,
            "learning_rate": learning_rate,
            "tokens_per_second": tokens / seconds if seconds > 0 else 0.0,
            "step_seconds": seconds,
            "max_steps": self.max_steps,
        }
        if grpo is not None:
            payload["grpo"] = grpo
            m["reward_mean"] = grpo["reward_mean"]
            m.setdefault("initial_reward_mean", grpo["reward_mean"])
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
                "category_mean_exact_match": exact["category_mean"],
            }
        if best:
            m["best_exact_match"] = exact["category_mean"] if exact else 0.0
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
                if failing_since is None:  # once per outage, not every half second
                    child.log_exception()
                    failing_since = time.monotonic()
                failing_for = time.monotonic() - failing_since
                if done and failing_for > CLOSE_RETRY_S:
                    # The run still ends: its final transition (or the server) says why.
                    child.log(f"dropping {len(pending)} unwritten events: {exc}")
                    return
                if failing_for > OUTAGE_LIMIT_S:
                    self.outage = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
                    self._stop.set("database")
                time.sleep(0.5)
                continue  # the same events go again with the next batch, in order
            if failing_since is not None:
                child.log(f"the database is back after {time.monotonic() - failing_since:.1f} s")
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
