"""The journey on embedded defaults: start a server on SQLite, import the corpus, query it.

make demo        (or: python scripts/demo.py [--data-dir demo-output])
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _bench import CORPUS, running_server
from tunixrt import Client

console = Console()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("demo-output"))
    args = parser.parse_args()
    shutil.rmtree(args.data_dir, ignore_errors=True)

    with running_server(args.data_dir) as (address, _pid), Client(address) as rt:
        console.rule(f"tunix-rt server on {address} (SQLite in {args.data_dir})")
        start = time.perf_counter()
        result = rt.import_jsonl(CORPUS)
        console.print(
            f"imported [bold]{result.accepted_count}[/] traces from {CORPUS.name} "
            f"in {time.perf_counter() - start:.2f}s ({result.rejected_count} rejected)"
        )
        table = Table("filter", "traces")
        for flt in ('category = "reasoning"', 'category = "synthetic" AND steps >= 2', "steps > 3"):
            table.add_row(flt, str(sum(1 for _ in rt.list_traces(flt, page_size=1000))))
        console.print(table)
        newest = next(rt.list_traces(page_size=1))
        console.print(f"newest: {newest.name}: {newest.prompt!r} -> {newest.final_answer!r}")
    console.rule("done")


if __name__ == "__main__":
    main()
