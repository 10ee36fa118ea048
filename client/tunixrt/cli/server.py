"""`tunix-rt info`, `serve` and `worker`: the server side of the command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..client import Client
from .output import (
    Command,
    emit,
    emit_one,
)


def info(args: argparse.Namespace, rt: Client) -> int:
    about = rt.get_server_info()
    if args.json:
        emit_one(args, about)
        return 0
    versions = ", ".join(f"{k} {v}" for k, v in sorted(about.library_versions.items()))
    print(f"tunix-rt-server {about.server_version} ({about.api_package}), {about.database}")
    print(f"workers: JAX {about.jax_backend or '?'} [{about.runtime_status}] {versions}")
    for d in about.devices:
        print(f"  device {d.id}: {d.platform} {d.kind} (process {d.process_index})")
    emit(
        args,
        about.presets,
        {
            "preset": lambda p: p.name,
            "parameters": lambda p: f"{p.parameter_count:,}" if p.parameter_count else "?",
            "lr": lambda p: f"{p.default_hyperparameters.learning_rate:g}",
            "needs weights": lambda p: "yes" if p.needs_weights else "",
            "about": lambda p: p.description,
        },
    )
    for reward in about.reward_functions:
        print(f"reward {reward.name}: {reward.description}")
    limits = about.limits
    print(
        f"auth {'on' if about.auth_enabled else 'off'}; {limits.max_concurrent_runs} concurrent "
        f"runs, {limits.max_queued_runs} queued, messages up to "
        f"{limits.max_receive_message_mb} MiB in, streams up to {limits.max_stream_s:g} s"
    )
    return 0


def serve_or_work(args: argparse.Namespace) -> int:
    """`serve` and `worker`. The server package (SQLAlchemy, grpc health/reflection)
    is imported only here so client commands stay light, and the client installs
    without it."""
    try:
        from tunixrt_server import app, standalone_worker
        from tunixrt_server.config import ConfigError, load_settings
    except ImportError as exc:
        print(
            f"tunix-rt {args.command} needs the server package ({exc.name} is missing): "
            "pip install 'tunix-rt-server[train]'",
            file=sys.stderr,
        )
        return 2

    try:
        settings = load_settings(
            args.config,
            address=getattr(args, "listen", None),
            data_dir=args.data_dir,
            database_url=args.database_url,
            metrics_address=getattr(args, "metrics_address", None),
            web_address=getattr(args, "web_address", None),
            max_concurrent_runs=getattr(args, "max_concurrent_runs", None),
            coordinator_address=getattr(args, "coordinator_address", None),
            num_processes=getattr(args, "num_processes", None),
            process_id=getattr(args, "process_id", None),
        )
    except ConfigError as exc:
        print(f"tunix-rt: {exc}", file=sys.stderr)
        return 2
    if args.command == "worker":
        if settings.max_concurrent_runs < 1:
            print("tunix-rt worker: max_concurrent_runs must be at least 1", file=sys.stderr)
            return 2
        standalone_worker.run(settings)
    else:
        app.run(settings)
    return 0


# ---- traces -------------------------------------------------------------------


def add_commands(sub: Any, command: Command) -> None:
    command(sub, "info", info, "What the server runs: versions, devices, presets, limits.")

    serve = command(sub, "serve", None, "Run the tunix-rt gRPC server.")
    worker = command(
        sub,
        "worker",
        None,
        "Train runs queued through any API server sharing its database (no API of its own).",
    )
    serve.add_argument(
        "--address",
        dest="listen",
        help="HOST:PORT to listen on (default 127.0.0.1:50051, port 0 picks one; "
        "env TUNIXRT_ADDRESS)",
    )
    serve.add_argument(
        "--metrics-address",
        help="HOST:PORT to serve Prometheus metrics on (env TUNIXRT_METRICS_ADDRESS)",
    )
    serve.add_argument(
        "--web-address",
        help="HOST:PORT for the browser console and gRPC-Web, e.g. 127.0.0.1:8080 "
        "(env TUNIXRT_WEB_ADDRESS)",
    )
    worker.add_argument(
        "--max-concurrent-runs",
        type=int,
        help="runs this worker trains at once (default 1; env TUNIXRT_MAX_CONCURRENT_RUNS)",
    )
    worker.add_argument(
        "--num-processes",
        type=int,
        help="workers, one per host, that train each run together (default 1; "
        "env TUNIXRT_NUM_PROCESSES)",
    )
    worker.add_argument(
        "--process-id",
        type=int,
        help="this worker's place in its group, 0 to num-processes - 1; 0 claims the "
        "runs (env TUNIXRT_PROCESS_ID)",
    )
    worker.add_argument(
        "--coordinator-address",
        help="HOST:PORT where process 0 of the group listens, the same for every "
        "process (env TUNIXRT_COORDINATOR_ADDRESS)",
    )
    for p in (serve, worker):
        p.set_defaults(server=True)
        p.add_argument(
            "--data-dir",
            type=Path,
            help="directory for the SQLite database, checkpoints and logs; a worker and "
            "its API servers must see the same one (env TUNIXRT_DATA_DIR)",
        )
        p.add_argument(
            "--database-url",
            help="SQLAlchemy URL, e.g. postgresql+psycopg://... (env TUNIXRT_DATABASE_URL)",
        )
        p.add_argument("--config", type=Path, help="YAML config file (env TUNIXRT_CONFIG)")
