"""The `tunix-rt` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _serve(args: argparse.Namespace) -> int:
    # The server (SQLAlchemy, grpc health/reflection) is imported only here so
    # client commands stay light.
    from tunixrt_server.app import run
    from tunixrt_server.config import ConfigError, load_settings

    try:
        settings = load_settings(
            args.config,
            address=args.address,
            data_dir=args.data_dir,
            database_url=args.database_url,
        )
    except ConfigError as exc:
        print(f"tunix-rt: {exc}", file=sys.stderr)
        return 2
    run(settings)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tunix-rt",
        description=(
            "Store reasoning traces, build datasets, export JSONL and train with Tunix over gRPC."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser(
        "serve", help="run the gRPC server", description="Run the tunix-rt gRPC server."
    )
    serve.add_argument(
        "--address", help="HOST:PORT to listen on (default 127.0.0.1:50051; env TUNIXRT_ADDRESS)"
    )
    serve.add_argument(
        "--data-dir",
        type=Path,
        help="directory for the SQLite database, checkpoints and logs (env TUNIXRT_DATA_DIR)",
    )
    serve.add_argument(
        "--database-url",
        help="SQLAlchemy URL, e.g. postgresql+psycopg://... (env TUNIXRT_DATABASE_URL)",
    )
    serve.add_argument("--config", type=Path, help="YAML config file (env TUNIXRT_CONFIG)")
    serve.set_defaults(func=_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
