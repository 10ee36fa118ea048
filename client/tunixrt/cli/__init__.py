"""The `tunix-rt` command: the server, and a client for every everyday task.

Human-readable output by default; `--json` prints one JSON object per line
(resources as proto3 JSON with the .proto field names) for scripts. One module
per command group: server (info, serve, worker), traces, datasets (and export),
training (train, watch), runs; output.py prints.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..client import DEFAULT_ADDRESS, Client
from ..errors import TunixRtError
from . import datasets, runs, server, traces, training
from .output import Handler
from .server import serve_or_work


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tunix-rt",
        description=(
            "Store reasoning traces, build datasets, export JSONL and train with Tunix over gRPC."
        ),
    )
    parser.add_argument(
        "--address",
        default=os.environ.get("TUNIXRT_ADDRESS", DEFAULT_ADDRESS),
        help=f"server HOST:PORT (env TUNIXRT_ADDRESS; default {DEFAULT_ADDRESS})",
    )
    parser.add_argument(
        "--token", default=os.environ.get("TUNIXRT_TOKEN"), help="bearer token (env TUNIXRT_TOKEN)"
    )
    parser.add_argument("--json", action="store_true", help="JSON lines instead of tables")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        group: Any, name: str, handler: Handler | None, help: str
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = group.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    for group in (server, traces, datasets, training, runs):
        group.add_commands(sub, command)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "server", False):
        return serve_or_work(args)
    try:
        with Client(args.address, token=args.token) as rt:
            return int(args.handler(args, rt))
    except TunixRtError as exc:
        print(f"tunix-rt: {exc}", file=sys.stderr)
        for violation in getattr(exc, "field_violations", []):
            print(f"  {violation.field}: {violation.description}", file=sys.stderr)
        return 1
    except OSError as exc:  # a file to import or write: missing, unreadable, disk full
        print(f"tunix-rt: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Streams were cancelled on the way out; the server and any run are untouched.
        print("\ntunix-rt: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
