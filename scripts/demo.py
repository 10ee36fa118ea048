"""The journey to a model that answers right: generated traces in, trained model out.

make demo   (or: python scripts/demo.py [--data-dir demo-output] [--steps N] [--seed S] [--rl])

Starts a server on SQLite, generates High Card Duel episodes and one-operation
arithmetic word problems, builds a stratified dataset with a held-out split,
trains the default tiny Gemma 3 model with the server's defaults (only the step
count is set) while drawing loss and exact match live, then prints held-out
exact match per category before and after training and leaves the curves in
DATA_DIR/learning.png. With --rl a GRPO stage follows: the SFT model's best
checkpoint is reinforced on the same prompts with the exact_match reward, and
the table is printed again (DATA_DIR/reward.png draws the reward). (`make
demo-corpus` is the journey on the tunix-rt corpus.)
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from _bench import running_server
from tunixrt import Client
from tunixrt.generators import RULES, generate_jsonl
from tunixrt.monitor import LossHistory, follow, save_loss_plot
from tunixrt.v1 import training_pb2

# Held-out split: 10% of each category, scored in full at the end.
DATA: dict[str, tuple[int, dict[str, str]]] = {
    "high_card_duel": (2000, {}),
    "arithmetic": (2000, {"difficulty": "easy"}),  # one operation on numbers up to 20
}
DEFAULT_STEPS = 1000
RL_STEPS = 200

console = Console()


def accuracy_table(
    before: training_pb2.EvalMetrics | None,
    after: training_pb2.Evaluation,
    steps: str,
) -> Table:
    table = Table(
        "category",
        "held-out examples",
        "before training",
        f"after ({steps})",
        "unfinished after",
    )
    for name, acc in sorted(after.per_category.items()):
        was = before.per_category.get(name) if before else None
        table.add_row(
            name,
            str(acc.example_count),
            f"{was.accuracy:.0%} of {was.example_count}" if was else "-",
            f"[bold]{acc.accuracy:.1%}[/] ({acc.correct_count})",
            str(acc.unfinished_count),
        )
    table.add_row(
        "all",
        str(after.example_count),
        f"{before.exact_match:.0%}" if before else "-",
        f"[bold]{after.accuracy:.1%}[/]",
        str(after.unfinished_count),
    )
    return table


@dataclass
class Outcome:
    run: training_pb2.TrainingRun
    before: training_pb2.EvalMetrics | None  # the step-0 evaluation (untrained)
    after: training_pb2.Evaluation  # every held-out example, best checkpoint
    history: LossHistory
    seconds: float


def learn(
    rt: Client,
    steps: int,
    seed: int,
    *,
    show: bool = True,
    overrides: dict[str, Any] | None = None,
    data: dict[str, tuple[int, dict[str, str]]] = DATA,
) -> Outcome:
    """The journey: generate and import `data`, build a stratified dataset, train
    with the server's defaults (or `overrides` of them) while following live,
    evaluate the best checkpoint."""
    began = time.perf_counter()

    def say(text: str) -> None:
        if show:
            console.print(text)

    for n, (name, (count, options)) in enumerate(data.items()):
        result = rt.import_jsonl(generate_jsonl(name, count, seed=seed * 10 + n, **options))
        say(f"generated and imported {result.accepted_count:,} {name} traces")
    ds = rt.build_dataset(
        "demo", "v1", strategy="STRATIFIED", stratify_by="category", eval_fraction=0.1, seed=seed
    )
    say(
        f"{ds.name}: {ds.stats.train_count:,} train / {ds.stats.eval_count:,} held out, "
        f"categories {dict(ds.stats.category_counts)}"
    )
    run = rt.create_training_run(
        ds.name, hyperparameters={"max_steps": steps, "seed": seed, **(overrides or {})}
    )
    hp = run.hyperparameters
    say(
        f"{run.name}: {run.model.preset}, {hp.max_steps} steps of {hp.batch_size}, "
        f"lr {hp.learning_rate:g}, exact match on {hp.eval_examples} held-out examples "
        f"every {hp.eval_every_steps} steps, max_seq_len chosen from the data"
    )
    first_eval: list[training_pb2.EvalMetrics] = []

    def events() -> Iterator[training_pb2.TrainingEvent]:
        for event in rt.watch_training_run(run.name):
            if not first_eval and event.HasField("eval_metrics"):
                first_eval.append(event.eval_metrics)
            yield event

    history = follow(events(), title=run.model.preset, show=show)
    done = rt.get_training_run(run.name)
    choice = "best" if done.best_checkpoint_step else "latest"
    after = rt.evaluate_run(run.name, checkpoint=choice)
    before = first_eval[0] if first_eval else None
    return Outcome(done, before, after, history, time.perf_counter() - began)


def reinforce(rt: Client, sft: training_pb2.TrainingRun, steps: int, seed: int) -> Outcome:
    """The GRPO stage: the SFT run's best checkpoint, the same dataset's prompts, the
    exact_match reward; evaluated like the SFT run."""
    began = time.perf_counter()
    run = rt.create_training_run(
        sft.dataset,
        local_path=sft.name,
        method="grpo",
        hyperparameters={"max_steps": steps, "seed": seed},
        rewards={"exact_match": 1.0},
    )
    g = run.grpo
    console.print(
        f"{run.name}: GRPO from {sft.name}, {steps} steps of {run.hyperparameters.batch_size} "
        f"prompts x {g.num_generations} completions (temperature {g.temperature:g}, "
        f"{g.max_new_tokens} tokens), lr {run.hyperparameters.learning_rate:g}"
    )
    history = follow(rt.watch_training_run(run.name), title="grpo")
    done = rt.get_training_run(run.name)
    choice = "best" if done.best_checkpoint_step else "latest"
    after = rt.evaluate_run(run.name, checkpoint=choice)
    return Outcome(done, None, after, history, time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("demo-output"))
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--seed", type=int, default=0, help="data, split and training seed")
    parser.add_argument("--rl", action="store_true", help="then a GRPO stage from the SFT model")
    parser.add_argument("--rl-steps", type=int, default=RL_STEPS)
    args = parser.parse_args()
    shutil.rmtree(args.data_dir, ignore_errors=True)
    began = time.perf_counter()

    with running_server(args.data_dir) as (address, _pid), Client(address) as rt:
        console.rule(f"tunix-rt server on {address} (SQLite in {args.data_dir})")
        outcome = learn(rt, args.steps, args.seed)
        done, history = outcome.run, outcome.history
        m = done.metrics
        console.print(
            f"{history.final_state.removeprefix('TRAINING_RUN_STATE_').lower()}: "
            f"{history.final_message}\n"
            f"max_seq_len {done.hyperparameters.max_seq_len}; train loss "
            f"{m.initial_train_loss:.3f} -> {m.train_loss:.3f}; eval loss "
            f"{m.initial_eval_loss:.3f} -> {m.eval_loss:.3f}; {m.seconds_per_step:.2f} s/step, "
            f"{m.tokens_per_second:,.0f} tokens/s; best exact match on the sample "
            f"{m.best_exact_match:.0%} at step {done.best_checkpoint_step}"
        )
        plot = save_loss_plot(history, args.data_dir / "learning.png", title=done.name)
        console.print(f"loss and exact match: [bold]{plot}[/]")

        after = outcome.after
        console.rule(f"held-out exact match, all {after.example_count} examples")
        console.print(accuracy_table(outcome.before, after, f"step {after.step}"))

        console.rule("generate")
        prompts = [
            f"{RULES} Your card: Queen♥. Bet or fold?",
            "Ana has 12 apples, then gets 7 more. How many apples does Ana have now?",
        ]
        checkpoint = "best" if done.best_checkpoint_step else "latest"
        answers = rt.generate(
            done.name, prompts, max_new_tokens=after.max_new_tokens, checkpoint=checkpoint
        )
        for gen in answers.generations:
            console.print(f"[bold]{gen.prompt}[/]\n{gen.text}\n-> answer: {gen.answer!r}\n")

        if args.rl:
            console.rule("GRPO from the SFT model")
            rl = reinforce(rt, done, args.rl_steps, args.seed)
            console.print(f"{rl.history.final_message} ({rl.seconds / 60:.1f} min)")
            plot = save_loss_plot(rl.history, args.data_dir / "reward.png", title=rl.run.name)
            console.print(f"reward and exact match: [bold]{plot}[/]")
            console.rule(f"held-out exact match after GRPO, all {rl.after.example_count} examples")
            console.print(accuracy_table(None, rl.after, f"GRPO step {rl.after.step}"))
            console.print(
                "SFT: "
                + ", ".join(
                    f"{name} {acc.accuracy:.1%}" for name, acc in sorted(after.per_category.items())
                )
            )
    console.rule(f"done in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
