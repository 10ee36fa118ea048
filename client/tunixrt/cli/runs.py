"""`tunix-rt runs ...`: list, show, cancel, resume, delete, evaluate, sample and export runs."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..client import Client
from .output import (
    Command,
    emit,
    emit_one,
)
from .training import RUN_COLUMNS


def runs_list(args: argparse.Namespace, rt: Client) -> int:
    emit(args, rt.list_training_runs(args.filter, state=args.state), RUN_COLUMNS)
    return 0


def runs_show(args: argparse.Namespace, rt: Client) -> int:
    emit_one(args, rt.get_training_run(args.run))
    return 0


def runs_cancel(args: argparse.Namespace, rt: Client) -> int:
    run = rt.cancel_training_run(args.run)
    emit(args, [run], RUN_COLUMNS)
    return 0


def runs_resume(args: argparse.Namespace, rt: Client) -> int:
    run = rt.resume_training_run(args.run)
    emit(args, [run], RUN_COLUMNS)
    return 0


def runs_delete(args: argparse.Namespace, rt: Client) -> int:
    rt.delete_training_run(args.run)
    print(f"deleted {args.run}", file=sys.stderr)
    return 0


def runs_eval(args: argparse.Namespace, rt: Client) -> int:
    result = rt.evaluate_run(
        args.run,
        split=args.split,
        max_examples=args.max_examples,
        max_new_tokens=args.max_new_tokens,
        checkpoint=args.checkpoint,
    )
    if args.json:
        emit_one(args, result)
        return 0
    print(
        f"step {result.step}: {result.correct_count}/{result.example_count} exact "
        f"({result.accuracy:.1%}), {result.unfinished_count} unfinished "
        f"(no answer within {result.max_new_tokens} tokens)"
    )
    for name, acc in sorted(result.per_category.items()):
        print(
            f"  {name}: {acc.correct_count}/{acc.example_count} ({acc.accuracy:.1%}), "
            f"{acc.unfinished_count} unfinished"
        )
    return 0


def runs_generate(args: argparse.Namespace, rt: Client) -> int:
    response = rt.generate(
        args.run,
        args.prompts,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        seed=args.seed,
        checkpoint=args.checkpoint,
    )
    if args.json:
        emit(args, response.generations, {})
        return 0
    for gen in response.generations:
        print(f"> {gen.prompt}\n{gen.text}\n[answer: {gen.answer!r}]\n")
    return 0


def runs_export_model(args: argparse.Namespace, rt: Client) -> int:
    response = rt.export_model(args.run, args.dir, checkpoint=args.checkpoint)
    if args.json:
        emit_one(args, response)
        return 0
    print(f"step {response.step} written to {response.output_dir}/ (under the server's data dir)")
    for f in response.files:
        print(f"  {f.name}  {f.size_bytes:,} bytes")
    print(f"start a run from it: tunix-rt train DATASET --local-path {response.output_dir}")
    return 0


# ---- parser -------------------------------------------------------------------


def add_commands(sub: Any, command: Command) -> None:
    runs = command(
        sub, "runs", None, "List, show, cancel, resume, evaluate, sample and export runs."
    )
    rsub = runs.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = command(rsub, "list", runs_list, "List runs, newest first.")
    p.add_argument("--state", default="", help="QUEUED, RUNNING, SUCCEEDED, FAILED or CANCELLED")
    p.add_argument(
        "--filter", default="", help='e.g. \'dataset = "demo-v1" AND labels.team = "nlp"\''
    )
    for name, handler, text in (
        ("show", runs_show, "Show one run."),
        ("cancel", runs_cancel, "Cancel a queued or running run (its checkpoint is kept)."),
        ("resume", runs_resume, "Resume a cancelled or failed run from its checkpoint."),
        ("delete", runs_delete, "Delete an ended run with its checkpoints and events."),
    ):
        command(rsub, name, handler, text).add_argument("run", help="trainingRuns/{uuid}")
    checkpoint_help = '"latest" (default), "best" (exact match during training) or a step'
    p = command(rsub, "eval", runs_eval, "Exact-match accuracy of a checkpoint.")
    p.add_argument("run", help="trainingRuns/{uuid}")
    p.add_argument("--split", default="EVAL", choices=["ALL", "TRAIN", "EVAL"])
    p.add_argument("--max-examples", type=int, default=0)
    p.add_argument(
        "--max-new-tokens", type=int, default=0, help="0: the longest reference answer + margin"
    )
    p.add_argument("--checkpoint", default="", help=checkpoint_help)
    p = command(rsub, "generate", runs_generate, "Sample completions from a checkpoint.")
    p.add_argument("run", help="trainingRuns/{uuid}")
    p.add_argument("prompts", nargs="+")
    p.add_argument("--checkpoint", default="", help=checkpoint_help)
    p.add_argument("--max-new-tokens", type=int, default=0)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p = command(
        rsub,
        "export-model",
        runs_export_model,
        "Write a checkpoint as a model directory (safetensors, config.json, tokenizer) "
        "under the server's data dir.",
    )
    p.add_argument("run", help="trainingRuns/{uuid}")
    p.add_argument("dir", help="a new directory, relative to the server's data dir")
    p.add_argument("--checkpoint", default="", help=checkpoint_help)
