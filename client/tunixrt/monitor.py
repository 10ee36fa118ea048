"""Following a training run: a live rich progress line and a loss-curve PNG."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .v1 import training_pb2


@dataclass
class LossHistory:
    """What a watcher saw: (step, loss) pairs, eval points, and how the run ended."""

    train: list[tuple[int, float]] = field(default_factory=list)
    eval: list[tuple[int, float]] = field(default_factory=list)
    final_state: str = ""
    final_message: str = ""
    last_sequence: int = 0

    def add(self, event: training_pb2.TrainingEvent) -> None:
        self.last_sequence = event.sequence
        kind = event.WhichOneof("event")
        if kind == "step_metrics":
            self.train.append((event.step, event.step_metrics.loss))
        elif kind == "eval_metrics":
            self.eval.append((event.step, event.eval_metrics.eval_loss))
        elif kind == "state_change":
            self.final_state = training_pb2.TrainingRunState.Name(event.state_change.state)
            self.final_message = event.state_change.message


def follow(
    events: Iterable[training_pb2.TrainingEvent], *, title: str = "training", show: bool = True
) -> LossHistory:
    """Consume a WatchTrainingRun stream, drawing a progress bar with step, loss,
    eval loss, tokens/s and ETA; returns everything seen."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    history = LossHistory()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}  eval {task.fields[eval]}  {task.fields[tps]} tok/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not show) as bar:
        task = bar.add_task(title, total=None, loss="-", eval="-", tps="-")
        for event in events:
            history.add(event)
            kind = event.WhichOneof("event")
            if kind == "step_metrics":
                m = event.step_metrics
                bar.update(
                    task,
                    completed=event.step,
                    total=m.max_steps,
                    loss=f"{m.loss:.3f}",
                    tps=f"{m.tokens_per_second:,.0f}",
                )
            elif kind == "eval_metrics":
                bar.update(task, eval=f"{event.eval_metrics.eval_loss:.3f}")
            elif kind == "state_change":
                state = history.final_state.removeprefix("TRAINING_RUN_STATE_")
                bar.update(task, description=f"{title} [{state.lower()}]")
    return history


def save_loss_plot(history: LossHistory, path: str | Path, title: str = "") -> Path:
    """Train and eval loss against step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    if history.train:
        steps, losses = zip(*history.train, strict=True)
        ax.plot(steps, losses, label="train loss", linewidth=1)
    if history.eval:
        steps, losses = zip(*history.eval, strict=True)
        ax.plot(steps, losses, "o-", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (completion tokens, nats)")
    ax.set_title(title or "training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
