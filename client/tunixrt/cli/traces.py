"""`tunix-rt traces ...`: import, generate, list, show and delete traces."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from ..client import Client
from ..generators import GENERATORS, generate_jsonl
from .output import (
    Columns,
    Command,
    emit,
    emit_one,
    to_dict,
)


def traces_import(args: argparse.Namespace, rt: Client) -> int:
    total_ok = total_bad = 0
    for path in args.files:
        result = rt.import_jsonl(
            sys.stdin.buffer if path == "-" else Path(path),
            source_name=args.source,
            source_file="" if path == "-" else Path(path).name,
        )
        total_ok += result.accepted_count
        total_bad += result.rejected_count
        if args.json:
            sys.stdout.write(orjson.dumps({"file": path, **to_dict(result)}).decode() + "\n")
        else:
            print(f"{path}: {result.accepted_count} imported, {result.rejected_count} rejected")
            for error in list(result.errors)[:20]:
                print(f"  trace {error.index}: {error.field}: {error.description}")
    return 0 if total_bad == 0 else 1


def traces_generate(args: argparse.Namespace, rt: Client) -> int:
    options = {"difficulty": args.difficulty} if args.difficulty else {}
    if args.on_server:
        generated = rt.generate_traces(
            args.generator, args.count, seed=args.seed, options=options, persist=True, view="BASIC"
        )
        if args.json:
            emit_one(args, generated)
        else:
            print(f"{args.generator}: {generated.stored_count} generated and stored on the server")
        return 0
    try:
        lines = generate_jsonl(args.generator, args.count, args.seed, **options)
    except (ValueError, TypeError) as exc:
        print(f"tunix-rt: {exc}", file=sys.stderr)
        return 2
    if not args.import_:
        out = sys.stdout.buffer
        for line in lines:
            out.write(line)
        out.flush()
        return 0
    result = rt.import_jsonl(lines)
    if args.json:
        emit_one(args, result)
    else:
        print(
            f"{args.generator}: {result.accepted_count} imported, {result.rejected_count} rejected"
        )
    return 0 if result.rejected_count == 0 else 1


def traces_list(args: argparse.Namespace, rt: Client) -> int:
    traces = rt.list_traces(args.filter, page_size=min(args.limit, 1000))
    limited = (t for n, t in enumerate(traces) if n < args.limit)
    columns: Columns = {
        "name": lambda t: t.name,
        "prompt": lambda t: t.prompt[:60],
        "final answer": lambda t: t.final_answer[:30],
        "steps": lambda t: len(t.steps),
    }
    emit(args, limited, columns)
    return 0


def traces_get(args: argparse.Namespace, rt: Client) -> int:
    emit_one(args, rt.get_trace(args.name))
    return 0


def traces_delete(args: argparse.Namespace, rt: Client) -> int:
    rt.delete_trace(args.name)
    print(f"deleted {args.name}", file=sys.stderr)
    return 0


# ---- datasets and export ------------------------------------------------------


def add_commands(sub: Any, command: Command) -> None:
    traces = command(sub, "traces", None, "Import, list, show and delete traces.")
    tsub = traces.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = command(tsub, "import", traces_import, "Import JSONL trace files (- for stdin).")
    p.add_argument("files", nargs="+", help="JSONL files, one trace per line")
    p.add_argument(
        "--source",
        default="",
        help="meta.source for traces without one (each gets meta.ingest_source_file too)",
    )
    p = command(
        tsub,
        "generate",
        traces_generate,
        "Generate synthetic traces (JSONL to stdout, or --import them).",
    )
    p.add_argument("generator", choices=sorted(GENERATORS))
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0, help="same seed, same traces")
    p.add_argument(
        "--difficulty",
        choices=["easy", "medium", "hard"],
        help="arithmetic only: one, two or three operations (default: all three in turn)",
    )
    p.add_argument(
        "--import", dest="import_", action="store_true", help="send to the server instead"
    )
    p.add_argument(
        "--on-server",
        action="store_true",
        help="generate and store them on the server (GenerateTraces), as any client can",
    )
    p = command(tsub, "list", traces_list, "List traces, newest first.")
    p.add_argument("--filter", default="", help="e.g. 'category = \"math\" AND steps >= 2'")
    p.add_argument("--limit", type=int, default=50, help="most traces to print (default 50)")
    p = command(tsub, "get", traces_get, "Show one trace.")
    p.add_argument("name", help="traces/{uuid} or a bare uuid")
    p = command(tsub, "delete", traces_delete, "Delete a trace no dataset uses.")
    p.add_argument("name", help="traces/{uuid} or a bare uuid")
