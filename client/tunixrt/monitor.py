"""Following a training run: a live progress line and a PNG of loss and exact match.

The progress bar and the plot use the `monitor` extra (rich, matplotlib); without
it, `follow` prints plain lines and `save_loss_plot` says what to install.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .v1 import training_pb2

MONITOR_EXTRA = "pip install 'tunix-rt[monitor]'"


@dataclass
class LossHistory:
    """What a watcher saw: (step, loss) pairs, evaluations, warnings, and how it ended."""

    train: list[tuple[int, float]] = field(default_factory=list)
    eval: list[tuple[int, float]] = field(default_factory=list)
    exact_match: list[tuple[int, float]] = field(default_factory=list)
    # A GRPO run's mean reward per step.
    reward: list[tuple[int, float]] = field(default_factory=list)
    # Exact match per category of the eval sample (a category per trace meta.category).
    per_category: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    final_state: str = ""
    final_message: str = ""
    last_sequence: int = 0

    def add(self, event: training_pb2.TrainingEvent) -> None:
        self.last_sequence = event.sequence
        kind = event.WhichOneof("event")
        if kind == "step_metrics":
            self.train.append((event.step, event.step_metrics.loss))
            if event.step_metrics.HasField("grpo"):
                self.reward.append((event.step, event.step_metrics.grpo.reward_mean))
        elif kind == "eval_metrics":
            self.eval.append((event.step, event.eval_metrics.eval_loss))
            if event.eval_metrics.example_count:
                self.exact_match.append((event.step, event.eval_metrics.exact_match))
                for name, acc in event.eval_metrics.per_category.items():
                    self.per_category.setdefault(name, []).append((event.step, acc.accuracy))
        elif kind == "warning":
            self.warnings.append(event.warning.message)
        elif kind == "state_change":
            self.final_state = training_pb2.TrainingRunState.Name(event.state_change.state)
            self.final_message = event.state_change.message


def _describe(event: training_pb2.TrainingEvent) -> dict[str, str]:
    """Bar fields an event changes."""
    kind = event.WhichOneof("event")
    if kind == "step_metrics":
        m = event.step_metrics
        loss = f"{m.loss:.3f}"
        if m.HasField("grpo"):
            loss += f"  reward {m.grpo.reward_mean:.3f}"
        return {"loss": loss, "tps": f"{m.tokens_per_second:,.0f}"}
    if kind == "eval_metrics" and event.eval_metrics.example_count:
        return {
            "eval": f"{event.eval_metrics.eval_loss:.3f}",
            "em": f"{event.eval_metrics.exact_match:.0%}",
        }
    if kind == "eval_metrics":
        return {"eval": f"{event.eval_metrics.eval_loss:.3f}"}
    return {}


def follow(
    events: Iterable[training_pb2.TrainingEvent], *, title: str = "training", show: bool = True
) -> LossHistory:
    """Consume a WatchTrainingRun stream, drawing a progress bar with step, loss, eval
    loss, exact match, tokens/s and ETA; returns everything seen."""
    try:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )
    except ImportError:
        return _follow_plain(events, title, show)

    history = LossHistory()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "loss {task.fields[loss]}  eval {task.fields[eval]}  exact {task.fields[em]}  "
            "{task.fields[tps]} tok/s"
        ),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not show) as bar:
        task = bar.add_task(title, total=None, loss="-", eval="-", em="-", tps="-")
        for event in events:
            history.add(event)
            kind = event.WhichOneof("event")
            fields: dict[str, Any] = dict(_describe(event))
            if kind == "step_metrics":
                fields |= {"completed": event.step, "total": event.step_metrics.max_steps}
            elif kind == "warning":
                bar.console.print(f"[yellow]warning:[/] {event.warning.message}")
            elif kind == "state_change":
                state = history.final_state.removeprefix("TRAINING_RUN_STATE_")
                fields["description"] = f"{title} [{state.lower()}]"
            if fields:
                bar.update(task, **fields)
    return history


def _follow_plain(
    events: Iterable[training_pb2.TrainingEvent], title: str, show: bool
) -> LossHistory:
    history = LossHistory()
    for event in events:
        history.add(event)
        kind = event.WhichOneof("event")
        if not show or kind == "checkpoint_saved":
            continue
        if kind == "step_metrics" and event.step % 10:
            continue
        fields = " ".join(f"{k} {v}" for k, v in _describe(event).items())
        if kind == "warning":
            fields = f"warning: {event.warning.message}"
        elif kind == "state_change":
            fields = history.final_state.removeprefix("TRAINING_RUN_STATE_").lower()
        if fields:
            print(f"{title} step {event.step}: {fields}", file=sys.stderr, flush=True)
    return history


def save_loss_plot(history: LossHistory, path: str | Path, title: str = "") -> Path:
    """Train and eval loss against step (a GRPO run: its mean reward, whose loss is
    near zero by construction), and exact match (right axis) when measured, overall
    and per category."""
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError(f"loss plots need matplotlib: {MONITOR_EXTRA}") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    if history.reward:
        steps, rewards = zip(*history.reward, strict=True)
        ax.plot(steps, rewards, label="mean reward", linewidth=1, color="tab:orange")
        ax.set_ylabel("mean reward of the step's completions")
    else:
        if history.train:
            steps, losses = zip(*history.train, strict=True)
            ax.plot(steps, losses, label="train loss", linewidth=1)
        if history.eval:
            steps, losses = zip(*history.eval, strict=True)
            ax.plot(steps, losses, "o-", label="eval loss")
        ax.set_ylabel("loss (completion tokens, nats)")
    ax.set_xlabel("step")
    ax.set_title(title or ("GRPO reward" if history.reward else "training loss"))
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if history.exact_match:
        right = ax.twinx()
        steps, values = zip(*history.exact_match, strict=True)
        right.plot(steps, [100 * v for v in values], "s-", color="tab:green", label="exact match")
        if len(history.per_category) > 1:  # one category's curve is the overall one
            colors = ("tab:purple", "tab:red", "tab:brown", "tab:olive", "tab:cyan", "tab:gray")
            for n, (name, points) in enumerate(sorted(history.per_category.items())):
                steps, values = zip(*points, strict=True)
                percent = [100 * v for v in values]
                color = colors[n % len(colors)]
                right.plot(steps, percent, "--", color=color, label=f"exact match: {name}")
        right.set_ylabel("exact match on held-out sample (%)")
        right.set_ylim(0, 100)
        more_handles, more_labels = right.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    ax.legend(handles, labels, loc="center right")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
