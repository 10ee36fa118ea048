"""Ingest speed: traces/s through ImportTraces into SQLite vs. plain sqlite3 executemany.

    python scripts/bench_ingest.py [--traces 22000] [--repeat 3] [--warm]

The floor inserts the same rows (already parsed and shaped, same table,
indexes and pragmas) with one sqlite3 executemany in one transaction. The
service path includes everything a user pays for: JSONL bytes over gRPC,
parsing, validation and the insert. Best of --repeat runs each.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

import orjson

from _bench import generated_lines, rate, running_server
from tunixrt import Client
from tunixrt_server.core.validation import trace_from_json
from tunixrt_server.storage.db import create_engine, migrate


def floor_rows(lines: list[bytes]) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for n, line in enumerate(lines):
        t = trace_from_json(orjson.loads(line))
        rows.append(
            (
                str(uuid.uuid4()),
                n,
                t.trace_version,
                t.prompt,
                t.final_answer,
                orjson.dumps(t.steps).decode(),
                orjson.dumps(t.meta).decode(),
                t.source,
                t.category,
                len(t.steps),
                t.char_count,
            )
        )
    return rows


def sqlite_floor(rows: list[tuple[object, ...]], tmp: Path) -> float:
    path = tmp / f"floor-{uuid.uuid4().hex}.db"
    migrate(create_engine(f"sqlite:///{path}"))  # the same schema and indexes
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    start = time.perf_counter()
    with db:
        db.executemany(
            "INSERT INTO traces (id, create_time_us, trace_version, prompt, final_answer,"
            " steps_json,"
            " meta, source, category, step_count, char_count) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
    elapsed = time.perf_counter() - start
    db.close()
    return elapsed


def service(lines: list[bytes], tmp: Path, batch_lines: int) -> float:
    with running_server(tmp / f"svc-{uuid.uuid4().hex}") as (address, _pid), Client(address) as rt:
        start = time.perf_counter()
        result = rt.import_jsonl(lines, batch_lines=batch_lines)
        elapsed = time.perf_counter() - start
    assert result.accepted_count == len(lines), result
    return elapsed


def warm_service(lines: list[bytes], tmp: Path, batch_lines: int, repeat: int) -> list[float]:
    """Imports into one server that has already imported (its batch parser's helper
    process up), as a long-running server takes them; the table grows each time."""
    with running_server(tmp / "warm") as (address, _pid), Client(address) as rt:
        rt.import_jsonl(lines[: 3 * batch_lines], batch_lines=batch_lines)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            rt.import_jsonl(lines, batch_lines=batch_lines)
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=22_000)
    parser.add_argument("--batch-lines", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--warm", action="store_true", help="also time imports into an already-used server"
    )
    args = parser.parse_args()
    lines = generated_lines(args.traces)
    rows = floor_rows(lines)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        floor = min(sqlite_floor(rows, tmp) for _ in range(args.repeat))
        svc = min(service(lines, tmp, args.batch_lines) for _ in range(args.repeat))
        warm = warm_service(lines, tmp, args.batch_lines, args.repeat) if args.warm else []
    print(f"traces:                    {args.traces:,} (generated, {args.batch_lines} per batch)")
    print(f"sqlite3 executemany floor: {rate(args.traces, floor)}  ({floor:.2f}s)")
    print(f"ImportTraces over gRPC:    {rate(args.traces, svc)}  ({svc:.2f}s)")
    print(f"ratio service/floor:       {floor / svc:.2f}  (goal >= 0.5)")
    if warm:
        rates = ", ".join(rate(args.traces, t) for t in warm)
        print(
            f"into a used server:        {rates}  (mean ratio {floor * len(warm) / sum(warm):.2f})"
        )


if __name__ == "__main__":
    main()
