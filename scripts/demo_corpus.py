"""The journey on the tunix-rt corpus: traces in, trained model out, loss watched live.

make demo-corpus   (or: python scripts/demo_corpus.py [--data-dir demo-corpus] [--steps 300])

Starts a server on SQLite, imports the 550 corpus traces, builds a stratified
dataset, exports it, trains the tiny Gemma 3 model on it with Tunix while
drawing the loss, evaluates the best checkpoint on the held-out split,
generates answers, and leaves the curves in DATA_DIR/loss.png. (`make demo`
is the journey whose model answers right: scripts/demo.py.)
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _bench import CORPUS, running_server
from tunixrt import Client
from tunixrt.monitor import follow, save_loss_plot

EVAL_SET = CORPUS.with_name("eval_v2.jsonl")

console = Console()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("demo-corpus"))
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    shutil.rmtree(args.data_dir, ignore_errors=True)

    with running_server(args.data_dir) as (address, _pid), Client(address) as rt:
        console.rule(f"tunix-rt server on {address} (SQLite in {args.data_dir})")
        start = time.perf_counter()
        result = rt.import_jsonl(CORPUS)
        console.print(
            f"imported [bold]{result.accepted_count}[/] traces from {CORPUS.name} "
            f"in {time.perf_counter() - start:.2f}s ({result.rejected_count} rejected)"
        )
        table = Table("filter", "traces")
        for flt in ('category = "reasoning"', 'category = "synthetic" AND steps >= 2', "steps > 3"):
            table.add_row(flt, str(sum(1 for _ in rt.list_traces(flt, page_size=1000))))
        console.print(table)
        newest = next(rt.list_traces(page_size=1))
        console.print(f"newest: {newest.name}: {newest.prompt!r} -> {newest.final_answer!r}")

        console.rule("dataset")
        ds = rt.build_dataset(
            "dev", "v1", strategy="STRATIFIED", stratify_by="category", eval_fraction=0.1, seed=7
        )
        console.print(
            f"{ds.name}: {ds.stats.train_count} train / {ds.stats.eval_count} eval, "
            f"categories {dict(ds.stats.category_counts)}"
        )
        export = args.data_dir / "dev-v1.tunix_sft.jsonl"
        summary = rt.export_to_file(ds.name, export, format="tunix_sft", split="TRAIN")
        console.print(f"exported {summary.row_count} rows to {export} (sha256 verified)")

        console.rule("training")
        run = rt.create_training_run(ds.name, hyperparameters={"max_steps": args.steps})
        hp = run.hyperparameters
        console.print(
            f"{run.name}: {run.model.preset}, {hp.max_steps} steps of {hp.batch_size} x "
            f"{hp.max_seq_len} tokens, lr {hp.learning_rate:g}"
        )
        history = follow(rt.watch_training_run(run.name), title="tiny-gemma3")
        done = rt.get_training_run(run.name)
        m = done.metrics
        console.print(
            f"{history.final_state}: {history.final_message}\n"
            f"train loss {m.initial_train_loss:.3f} -> {m.train_loss:.3f}, "
            f"eval loss {m.initial_eval_loss:.3f} -> {m.eval_loss:.3f}, "
            f"{m.seconds_per_step:.3f} s/step, {m.tokens_per_second:,.0f} tokens/s"
        )
        plot = save_loss_plot(history, args.data_dir / "loss.png", title=run.name)
        console.print(f"loss curve: [bold]{plot}[/]")

        console.rule("evaluation (held-out split, exact match after 'Answer:')")
        evaluation = rt.evaluate_run(
            run.name, checkpoint="best" if done.best_checkpoint_step else ""
        )
        table = Table("category", "correct", "examples", "accuracy")
        for name, acc in sorted(evaluation.per_category.items()):
            table.add_row(
                name, str(acc.correct_count), str(acc.example_count), f"{acc.accuracy:.0%}"
            )
        table.add_row(
            "all",
            str(evaluation.correct_count),
            str(evaluation.example_count),
            f"{evaluation.accuracy:.0%}",
        )
        console.print(table)

        console.rule("generate")
        prompts = [json.loads(line)["prompt"] for line in EVAL_SET.read_text().splitlines()[:3]]
        for gen in rt.generate(
            run.name, prompts, max_new_tokens=evaluation.max_new_tokens
        ).generations:
            console.print(f"[bold]{gen.prompt}[/]\n{gen.text}\n-> answer: {gen.answer!r}\n")
    console.rule("done")


if __name__ == "__main__":
    main()
