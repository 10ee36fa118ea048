"""The `tunix-rt` command: the server, and a client for every everyday task.

Human-readable output by default; `--json` prints one JSON object per line
(resources as proto3 JSON with the .proto field names) for scripts.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message

from .client import DEFAULT_ADDRESS, Client
from .errors import TunixRtError
from .generators import GENERATORS, generate_jsonl
from .stream import Stream
from .v1 import training_pb2

Handler = Callable[[argparse.Namespace, Client], int]
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


def _time(stamp: Any) -> str:
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


def _state(name: str) -> str:
    return name.removeprefix("TRAINING_RUN_STATE_").lower()


# ---- server -------------------------------------------------------------------


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
    limits = about.limits
    print(
        f"auth {'on' if about.auth_enabled else 'off'}; {limits.max_concurrent_runs} concurrent "
        f"runs, {limits.max_queued_runs} queued, messages up to "
        f"{limits.max_receive_message_mb} MiB in, streams up to {limits.max_stream_s:g} s"
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
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

DATASET_COLUMNS: Columns = {
    "name": lambda d: d.name,
    "traces": lambda d: d.stats.trace_count,
    "train": lambda d: d.stats.train_count,
    "eval": lambda d: d.stats.eval_count,
    "created": lambda d: _time(d.create_time),
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

RUN_COLUMNS: Columns = {
    "name": lambda r: r.name,
    "dataset": lambda r: r.dataset,
    "state": lambda r: _state(training_pb2.TrainingRunState.Name(r.state)),
    "step": lambda r: f"{r.metrics.step}/{r.hyperparameters.max_steps}",
    "loss": lambda r: f"{r.metrics.train_loss:.3f}" if r.metrics.step else "",
    "eval loss": lambda r: f"{r.metrics.eval_loss:.3f}" if r.metrics.eval_loss else "",
    "created": lambda r: _time(r.create_time),
}


def train(args: argparse.Namespace, rt: Client) -> int:
    labels = dict(item.split("=", 1) for item in args.label)
    hp = {
        "max_steps": args.steps,
        "num_epochs": args.epochs,
        "batch_size": args.batch_size,
        "max_seq_len": args.seq_len,
        "learning_rate": args.learning_rate,
        "eval_every_steps": args.eval_every,
        "eval_examples": args.eval_examples,
        "checkpoint_every_steps": args.checkpoint_every,
        "seed": args.seed,
        "system_instruction": args.system_instruction,
    }
    run = rt.create_training_run(
        args.dataset,
        preset=args.preset,
        local_path=args.local_path,
        tokenizer=args.tokenizer,
        vocab_size=args.vocab_size,
        hyperparameters={k: v for k, v in hp.items() if v},
        lora_rank=args.lora_rank,
        mesh={"fsdp": args.fsdp, "tp": args.tp},
        created_by=args.created_by or os.environ.get("USER", ""),
        labels=labels,
        validate_only=args.validate_only,
    )
    if args.validate_only:
        emit_one(args, run)
        return 0
    if args.json:
        emit_one(args, run)
    else:
        print(f"started {run.name} on {run.dataset}", file=sys.stderr)
    if args.detach:
        return 0
    args.run = run.name
    args.since_step = 0
    return watch(args, rt)


T = TypeVar("T")
_END = object()


def interruptible(stream: Stream[T]) -> Iterator[T]:
    """Items of a blocking stream, read on a daemon thread: the main thread only waits
    on a queue in short slices, so Ctrl-C is handled at once whatever the stream or
    the machine's load is doing, and leaving early closes (cancels) the stream."""
    items: queue.Queue[Any] = queue.Queue(maxsize=1024)

    def pump() -> None:
        try:
            for item in stream:
                items.put(item)
            items.put(_END)
        except BaseException as exc:  # handed to the main thread
            items.put(exc)

    threading.Thread(target=pump, name="stream", daemon=True).start()
    try:
        while True:
            try:
                item = items.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stream.cancel()  # thread-safe; the reader thread then ends


def watch(args: argparse.Namespace, rt: Client) -> int:
    from .monitor import LossHistory, follow, save_loss_plot

    events = interruptible(rt.watch_training_run(args.run, since_step=args.since_step))
    if args.json:
        history = LossHistory()
        for event in events:
            history.add(event)
            sys.stdout.write(orjson.dumps(to_dict(event)).decode() + "\n")
            sys.stdout.flush()
    else:
        history = follow(events, title=args.run.removeprefix("trainingRuns/")[:8])
        losses = [loss for _, loss in history.train]
        if losses:
            print(f"loss {losses[0]:.3f} {sparkline(losses)} {losses[-1]:.3f}")
        print(f"{_state(history.final_state)}: {history.final_message}")
    if args.png:
        save_loss_plot(history, args.png, title=args.run)
        print(f"loss curve written to {args.png}", file=sys.stderr)
    return 0 if history.final_state.endswith("SUCCEEDED") else 1


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

    p = command(sub, "train", train, "Start a training run, then follow it like `watch`.")
    p.add_argument("dataset", help="datasets/{key} or a bare key")
    p.add_argument("--preset", default="", help="model preset (default tiny-gemma3)")
    p.add_argument("--local-path", default="", help="trainingRuns/{uuid} or a dir in the data dir")
    p.add_argument(
        "--tokenizer",
        choices=["subword", "bytes"],
        default="",
        help="a from-scratch model's tokenizer (default subword: trained on the train split)",
    )
    p.add_argument("--vocab-size", type=int, default=0, help="subword pieces (default 640)")
    p.add_argument("--steps", type=int, default=0, help="max steps (default 200)")
    p.add_argument("--epochs", type=int, default=0, help="passes over the train split, not --steps")
    p.add_argument(
        "--validate-only", action="store_true", help="check the run and print it; start nothing"
    )
    p.add_argument("--batch-size", type=int, default=0)
    p.add_argument("--seq-len", type=int, default=0)
    p.add_argument("--learning-rate", type=float, default=0.0)
    p.add_argument("--eval-every", type=int, default=0)
    p.add_argument(
        "--eval-examples",
        type=int,
        default=0,
        help="exact-match sample per eval (default 64; -1: none)",
    )
    p.add_argument("--checkpoint-every", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--system-instruction", default="")
    p.add_argument("--lora-rank", type=int, default=0, help="> 0 trains LoRA adapters")
    p.add_argument(
        "--fsdp", type=int, default=0, help="devices on the fsdp axis (default: all local)"
    )
    p.add_argument("--tp", type=int, default=0, help="devices on the tensor-parallel axis")
    p.add_argument("--label", action="append", default=[], help="KEY=VALUE, repeatable")
    p.add_argument("--created-by", default="")
    p.add_argument("--detach", action="store_true", help="print the run and return")
    p.add_argument("--png", type=Path, help="save the loss curve here when it ends")

    p = command(sub, "watch", watch, "Follow a run: live progress, loss curve, optional PNG.")
    p.add_argument("run", help="trainingRuns/{uuid} or a bare uuid")
    p.add_argument("--since-step", type=int, default=0)
    p.add_argument("--png", type=Path, help="save the loss curve here when it ends")

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
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "server", False):
        return _serve(args)
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
