"""The web port's cost against the gRPC port, measured in the same run on one server.

    python scripts/bench_web.py [--calls 2000] [--rows 10000] [--rounds 3]

- a unary call (GetTrace of one corpus trace), sequential, per call: the
  native gRPC port (the SDK's channel) and the web port (gRPC-Web over
  HTTP/1.1 keep-alive, scripts/_grpc_web.py), alternating by round;
- an export of the same `rows` rows (ExportDataset, TUNIX_SFT): seconds each way;
- the console's first load in Debian's chromium, when Playwright and the browser
  are there: navigation to the server panel drawn, and the bundle's gzipped size.
Prints one JSON object; the ratios are web / native.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _grpc_web import GrpcWebClient

from _bench import CORPUS, ROOT, running_server
from tunixrt import Client
from tunixrt.v1 import export_pb2, trace_pb2

GET_TRACE = "/tunixrt.v1.TraceService/GetTrace"
EXPORT = "/tunixrt.v1.ExportService/ExportDataset"
BUNDLE = ROOT / "server" / "tunixrt_server" / "console" / "console.js"


def _web_url(data_dir: Path) -> str:
    deadline = time.monotonic() + 30
    while not (m := re.search(r"console on (\S+)", (data_dir / "server.log").read_text())):
        if time.monotonic() > deadline:
            raise RuntimeError("the server printed no console address")
        time.sleep(0.05)
    return m.group(1)


def _first_load(url: str) -> float | None:
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if chromium is None:
        return None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        times = []
        for _ in range(5):
            page = browser.new_context().new_page()  # a fresh cache each time
            began = time.perf_counter()
            page.goto(url)
            page.get_by_test_id("server-info").wait_for()
            times.append(time.perf_counter() - began)
            page.context.close()
        browser.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_server(Path(tmp), "--web-address", "127.0.0.1:0") as (address, _),
        Client(address) as native,
    ):
        url = _web_url(Path(tmp))
        lines = CORPUS.read_bytes().splitlines(keepends=True)
        copies = -(-args.rows // len(lines))
        native.import_jsonl(lines * copies)
        native.build_dataset("bench", "v1", limit=args.rows)
        name = next(native.list_traces(page_size=1)).name
        request = trace_pb2.GetTraceRequest(name=name)
        export = export_pb2.ExportDatasetRequest(
            dataset="bench-v1", format=export_pb2.EXPORT_FORMAT_TUNIX_SFT
        )
        unary: dict[str, list[float]] = {"native": [], "web": []}
        exports: dict[str, list[float]] = {"native": [], "web": []}
        with GrpcWebClient(url) as web:
            for _ in range(args.rounds):
                began = time.perf_counter()
                for _ in range(args.calls):
                    native.get_trace(name)
                unary["native"].append((time.perf_counter() - began) / args.calls)
                began = time.perf_counter()
                for _ in range(args.calls):
                    web.unary(GET_TRACE, request, trace_pb2.Trace)
                unary["web"].append((time.perf_counter() - began) / args.calls)

                began = time.perf_counter()
                rows = sum(
                    c.chunk.row_count for c in native.export_chunks("bench-v1", format="tunix_sft")
                )
                exports["native"].append(time.perf_counter() - began)
                began = time.perf_counter()
                web_rows = sum(
                    c.chunk.row_count
                    for c in web.stream(EXPORT, export, export_pb2.ExportDatasetResponse)
                )
                exports["web"].append(time.perf_counter() - began)
                assert rows == web_rows == args.rows, (rows, web_rows)
        load = _first_load(url)
    med = {k: statistics.median(v) for k, v in unary.items()}
    exp = {k: statistics.median(v) for k, v in exports.items()}
    print(
        json.dumps(
            {
                "unary_ms": {k: round(v * 1e3, 3) for k, v in med.items()},
                "unary_ratio": round(med["web"] / med["native"], 2),
                f"export_{args.rows}_rows_s": {k: round(v, 3) for k, v in exp.items()},
                "export_ratio": round(exp["web"] / exp["native"], 2),
                "first_load_s": round(load, 3) if load is not None else None,
                "bundle_gzip_kb": round(len(gzip.compress(BUNDLE.read_bytes())) / 1024, 1),
                "rounds": args.rounds,
                "calls": args.calls,
            }
        )
    )


if __name__ == "__main__":
    main()
