"""BuildDataset and export at scale: time and the server's memory growth per N.

    python scripts/bench_datasets.py [--traces 100000 1000000] [--database-url URL]

For each N: a fresh server imports N generated traces, then (timed) builds a
STRATIFIED dataset by category with 10% held out and exports it as tunix_sft to
a file. The server's peak RSS is reset after the import (/proc/PID/clear_refs),
so "growth" is what build + export add over the RSS the import left. On SQLite
the baseline, in the same run on the same file, is the previous server's way:
read every candidate's (seq, category) into Python, shuffle per stratum, take
turns, split, and insert the items with executemany.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from _bench import generated_lines, running_server
from tunixrt import Client


def rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def python_build(db_path: Path, seed: int = 0) -> float:
    """The previous BuildDataset, in process: selection and split in Python."""
    start = time.perf_counter()
    db = sqlite3.connect(db_path)
    strata: dict[str, list[int]] = defaultdict(list)
    for seq, category in db.execute("SELECT seq, json_extract(meta, '$.category') FROM traces"):
        strata[str(category)].append(seq)
    rng = random.Random(seed)
    queues = [rng.sample(strata[name], len(strata[name])) for name in sorted(strata)]
    picked = [q[d] for d in range(max(map(len, queues))) for q in queues if d < len(q)]
    held = {q[n] for q in queues for n in range(round(len(q) * 0.1))}
    db.execute("CREATE TEMP TABLE items (position INTEGER, trace_seq INTEGER, split INTEGER)")
    db.executemany(
        "INSERT INTO items VALUES (?, ?, ?)",
        ((n, seq, 3 if seq in held else 2) for n, seq in enumerate(picked)),
    )
    db.commit()
    db.close()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (an empty database)")
    args = parser.parse_args()
    print("traces     build s   export s   server RSS after import   growth (build+export)")
    for n in args.traces:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            extra = ("--database-url", args.database_url) if args.database_url else ()
            with running_server(tmp / "data", *extra) as (address, pid), Client(address) as rt:
                rt.import_jsonl(generated_lines(n))
                base = rss_kb(pid, "VmRSS")
                Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM
                start = time.perf_counter()
                ds = rt.build_dataset(
                    "scale", "v1", strategy="STRATIFIED", stratify_by="category", eval_fraction=0.1
                )
                build = time.perf_counter() - start
                start = time.perf_counter()
                summary = rt.export_to_file(ds.name, tmp / "out.jsonl", format="tunix_sft")
                export = time.perf_counter() - start
                assert ds.stats.trace_count == summary.row_count == n
                growth = rss_kb(pid, "VmHWM") - base
            baseline = None if args.database_url else python_build(tmp / "data" / "tunixrt.db")
        print(
            f"{n:>9,}  {build:7.2f}   {export:7.2f}   {base / 1024:8.0f} MB"
            f"                {growth / 1024:6.0f} MB"
            + (
                f"   (previous in-process build {baseline:.2f} s: {baseline / build:.2f}x)"
                if baseline is not None
                else ""
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
