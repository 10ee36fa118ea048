"""`tunix-rt datasets ...` and `tunix-rt export`: build, show and export datasets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..client import Client
from .output import (
    Columns,
    Command,
    emit,
    emit_one,
    time_text,
)

DATASET_COLUMNS: Columns = {
    "name": lambda d: d.name,
    "traces": lambda d: d.stats.trace_count,
    "train": lambda d: d.stats.train_count,
    "eval": lambda d: d.stats.eval_count,
    "created": lambda d: time_text(d.create_time),
}


def datasets_build(args: argparse.Namespace, rt: Client) -> int:
    ds = rt.build_dataset(
        args.dataset_name,
        args.version,
        filter=args.filter,
        limit=args.limit,
        strategy=args.strategy,
        seed=args.seed,
        stratify_by=args.stratify_by,
        eval_fraction=args.eval_fraction,
    )
    emit(args, [ds], DATASET_COLUMNS)
    return 0


def datasets_list(args: argparse.Namespace, rt: Client) -> int:
    emit(args, rt.list_datasets(), DATASET_COLUMNS)
    return 0


def datasets_show(args: argparse.Namespace, rt: Client) -> int:
    emit_one(args, rt.get_dataset(args.name))
    return 0


def export(args: argparse.Namespace, rt: Client) -> int:
    """`export DATASET OUT`, or `export --trace-ids FILE OUT` (one name or uuid a line)."""
    if len(args.targets) != (1 if args.trace_ids else 2):
        print("tunix-rt: give DATASET OUT, or --trace-ids FILE OUT", file=sys.stderr)
        return 2
    args.out = Path(args.targets[-1])
    common = {"format": args.format, "system_instruction": args.system_instruction}
    if args.trace_ids:
        names = [line.strip() for line in args.trace_ids.read_text().splitlines() if line.strip()]
        summary = rt.export_traces_to_file(names, args.out, progress=not args.json, **common)
    else:
        summary = rt.export_to_file(
            args.targets[0], args.out, split=args.split, progress=not args.json, **common
        )
    if args.json:
        emit_one(args, summary)
    else:
        print(f"{args.out}: {summary.row_count} rows, {summary.byte_count} bytes, sha256 verified")
    return 0


# ---- training -----------------------------------------------------------------


def add_commands(sub: Any, command: Command) -> None:
    datasets = command(sub, "datasets", None, "Build, list and show datasets.")
    dsub = datasets.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = command(dsub, "build", datasets_build, "Freeze a selection of traces as a dataset.")
    p.add_argument("dataset_name")
    p.add_argument("version")
    p.add_argument("--filter", default="")
    p.add_argument("--limit", type=int, default=0, help="0: all matching traces")
    p.add_argument("--strategy", default="LATEST", choices=["LATEST", "RANDOM", "STRATIFIED"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stratify-by", default="", help="meta key, e.g. category")
    p.add_argument("--eval-fraction", type=float, default=0.0)
    command(dsub, "list", datasets_list, "List datasets, newest first.")
    p = command(dsub, "show", datasets_show, "Show one dataset with its stats.")
    p.add_argument("name", help="datasets/{key} or a bare key")

    p = command(
        sub,
        "export",
        export,
        "Export a dataset (or listed traces) to a JSONL file, checksum verified; an "
        "interrupted export continues from its .part file.",
    )
    p.add_argument("targets", nargs="+", metavar="DATASET OUT", help="datasets/{key} and a path")
    p.add_argument("--trace-ids", type=Path, help="export these traces instead (a file of names)")
    p.add_argument(
        "--format",
        default="trace",
        choices=[
            "trace",
            "tunix_sft",
            "messages",
            "prompt_completion",
            "tunix_rt_trace",
            "tunix_rt_sft",
            "training_example",
        ],
    )
    p.add_argument("--split", default="ALL", choices=["ALL", "TRAIN", "EVAL"])
    p.add_argument("--system-instruction", default="")
