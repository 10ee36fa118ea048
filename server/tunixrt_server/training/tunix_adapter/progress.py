"""What a run reports while it trains: the Listener the worker implements, and
the metrics backends that turn Tunix's jax.monitoring scalars into its calls and
into TensorBoard curves, without ever making training wait."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tunix.sft import metrics_logger

# TensorBoard event files (Tunix's metrics logger), next to the live stream.
TENSORBOARD_DIR = "tensorboard"


@dataclass(frozen=True)
class DataInfo:
    max_seq_len: int
    from_data: bool
    train_examples: int
    eval_examples: int
    truncated: int
    dropped: int
    buckets: list[int]


class Listener(Protocol):
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


class ListenerBackend:
    """Receives Tunix's jax.monitoring scalars (`{prefix}/{mode}/{name}`)."""

    def __init__(self, listener: Listener, tokens_of_step: Callable[[int], int]) -> None:
        self._listener = listener
        self._tokens_of_step = tokens_of_step
        self._lr = 0.0
        self._pending: tuple[int, float] | None = None
        self.eval_loss: float = 0.0
        self.after_step: Callable[[], None] = lambda: None

    def log_scalar(self, event: str, value: Any, **kwargs: Any) -> None:
        step = int(kwargs.get("step") or 0)
        if event.endswith("/train/loss"):
            self._flush()
            self._pending = (step, float(value))
        elif event.endswith("/train/learning_rate"):
            self._lr = float(value)
            self._flush()
        elif event.endswith("/eval/loss"):
            self.eval_loss = float(value)  # reported with exact match by the eval hook

    def _flush(self) -> None:
        # The learning rate of a step is logged just after its loss.
        if self._pending is not None:
            step, loss = self._pending
            self._pending = None
            self._listener.on_step(step, loss, self._lr, self._tokens_of_step(step))
            self.after_step()

    def close(self) -> None:
        self._flush()


class Detached:
    """A metrics backend that never makes training wait: scalars go through a bounded
    queue to the wrapped backend on its own thread. TensorBoard's writer blocks when
    its disk is full (its own queue stops draining), and Tunix calls backends inline
    from jax.monitoring, even for Orbax's internal scalars during a checkpoint save;
    so only train/eval scalars pass, a full queue drops them, and closing waits a
    few seconds at most."""

    CLOSE_WAIT_S = 5.0

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self._queue: queue.Queue[tuple[str, Any, dict[str, Any]] | None] = queue.Queue(10_000)
        self._thread = threading.Thread(target=self._drain, name="tensorboard", daemon=True)
        self._thread.start()

    def log_scalar(self, event: str, value: Any, **kwargs: Any) -> None:
        if "/train/" in event or "/eval/" in event:
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait((event, float(value), kwargs))

    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            with contextlib.suppress(Exception):  # a full disk: lose curves, not the run
                self._backend.log_scalar(item[0], item[1], **item[2])
        with contextlib.suppress(Exception):
            self._backend.close()

    def close(self) -> None:
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(self.CLOSE_WAIT_S)


class Lent:
    """A backend lent to Tunix's metrics logger, which closes its backends when
    training ends; the owner closes it itself, after the last evaluation."""

    def __init__(self, backend: Detached | Nowhere) -> None:
        self.log_scalar = backend.log_scalar

    def close(self) -> None: ...


class Nowhere:
    """A metrics backend for the processes of a group other than the first."""

    def log_scalar(self, event: str, value: Any, **kwargs: Any) -> None: ...
    def close(self) -> None: ...


def tensorboard(run_dir: Path, *, write: bool = True) -> Detached | Nowhere:
    """The run's TensorBoard backend (`write` False: a process that logs nothing)."""
    if not write:
        return Nowhere()
    return Detached(
        metrics_logger.TensorboardBackend(
            log_dir=str(run_dir / TENSORBOARD_DIR), flush_every_n_steps=10
        )
    )


def logging_options(run_dir: Path, *backends: Any) -> metrics_logger.MetricsLoggerOptions:
    """Tunix's metrics logger writing to `backends` (each a log_scalar/close object)."""
    return metrics_logger.MetricsLoggerOptions(
        log_dir=str(run_dir / TENSORBOARD_DIR),
        backend_kwargs={"custom_backend": [lambda b=b: b for b in backends]},
    )


class CheckpointReports:
    """Tells the listener of each checkpoint a trainer's manager saved since it last
    looked (called after every step, and once at the end)."""

    def __init__(self, manager: Any, listener: Listener, root: Path) -> None:
        self._manager, self._listener, self._root = manager, listener, root
        self.saved: int = manager.latest_step() or 0

    def __call__(self) -> None:
        latest = self._manager.latest_step() or 0
        if latest > self.saved:
            self.saved = latest
            self._listener.on_checkpoint(latest, str(self._root / str(latest)))
