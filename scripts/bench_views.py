"""ListTraces pages in the BASIC view against the FULL one, in one run.

    python scripts/bench_views.py [--traces 20000] [--page-size 1000] [--rounds 5]

A server on SQLite with generated traces (half arithmetic, half High Card Duel);
every page of the whole listing is fetched in each view, alternating views
round by round. Reported per view: the median time to list everything, the
mean page time, and the bytes of a page on the wire (the serialized response);
then BASIC as a ratio of FULL.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from _bench import generated_lines, running_server
from tunixrt import Client
from tunixrt.v1 import trace_pb2


def list_all(
    rt: Client, view: trace_pb2.TraceView.ValueType, page_size: int
) -> tuple[float, int, int]:
    """(seconds, pages, bytes of the first page) for the whole listing."""
    began, token, pages, first = time.perf_counter(), "", 0, 0
    while True:
        request = trace_pb2.ListTracesRequest(page_size=page_size, page_token=token, view=view)
        page = rt.traces.ListTraces(request)
        first = first or page.ByteSize()
        pages += 1
        token = page.next_page_token
        if not token:
            return time.perf_counter() - began, pages, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=20_000)
    parser.add_argument("--page-size", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    views = {"FULL": trace_pb2.TRACE_VIEW_FULL, "BASIC": trace_pb2.TRACE_VIEW_BASIC}
    seconds: dict[str, list[float]] = {name: [] for name in views}
    shape: dict[str, tuple[int, int]] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_server(Path(tmp) / "data") as (address, _),
        Client(address) as rt,
    ):
        rt.import_jsonl(generated_lines(args.traces))
        for _ in range(args.rounds):
            for name, view in views.items():
                took, pages, first = list_all(rt, view, args.page_size)
                seconds[name].append(took)
                shape[name] = (pages, first)
    report = {
        name: {
            "median_s": round(statistics.median(values), 3),
            "page_ms": round(statistics.median(values) / shape[name][0] * 1000, 2),
            "page_bytes": shape[name][1],
        }
        for name, values in seconds.items()
    }
    print(json.dumps({"traces": args.traces, "page_size": args.page_size, **report}))
    basic, full = report["BASIC"], report["FULL"]
    ratios = {
        "time": round(basic["median_s"] / full["median_s"], 3),
        "bytes": round(basic["page_bytes"] / full["page_bytes"], 3),
    }
    print(json.dumps({"basic_over_full": ratios}))


if __name__ == "__main__":
    main()
