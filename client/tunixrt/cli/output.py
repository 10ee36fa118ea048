"""What every command prints: tables for people, JSON lines (`--json`) for scripts."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message

from ..client import Client

Handler = Callable[[argparse.Namespace, Client], int]
# How a command group registers a command: (subparsers, name, handler, help).
Command = Callable[[Any, str, Handler | None, str], argparse.ArgumentParser]
BARS = "▁▂▃▄▅▆▇█"


# ---- output -------------------------------------------------------------------


def to_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


Columns = dict[str, Callable[[Any], object]]


def emit(args: argparse.Namespace, items: Iterable[Message], columns: Columns) -> None:
    """JSON lines with --json; else a table of `columns` (header -> cell of an item)."""
    if args.json:
        for item in items:
            sys.stdout.write(orjson.dumps(to_dict(item)).decode() + "\n")
        return
    rows = [[str(cell(item)) for cell in columns.values()] for item in items]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # the client without its [monitor] extra: plain columns
        widths = [max(len(c) for c in column) for column in zip(columns, *rows, strict=True)]
        for row in [list(columns), *rows]:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def emit_one(args: argparse.Namespace, message: Message) -> None:
    if args.json:
        sys.stdout.write(orjson.dumps(to_dict(message)).decode() + "\n")
        return
    try:
        from rich.console import Console
        from rich.pretty import Pretty
    except ImportError:
        print(orjson.dumps(to_dict(message), option=orjson.OPT_INDENT_2).decode())
        return
    Console().print(Pretty(to_dict(message)))


def time_text(stamp: Any) -> str:
    return str(stamp.ToJsonString()) if stamp.seconds else ""


def sparkline(values: list[float], width: int = 60) -> str:
    """The loss curve in one line of block characters (high = tall)."""
    if not values:
        return ""
    step = max(1, len(values) // width)
    points = [
        sum(values[i : i + step]) / len(values[i : i + step]) for i in range(0, len(values), step)
    ]
    low, high = min(points), max(points)
    span = (high - low) or 1.0
    return "".join(BARS[int((p - low) / span * (len(BARS) - 1))] for p in points)


def state_text(name: str) -> str:
    return name.removeprefix("TRAINING_RUN_STATE_").lower()


# ---- server -------------------------------------------------------------------
