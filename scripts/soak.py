"""A soak: a mixed load against one server on PostgreSQL for a given time, with the
server's memory and the calls' codes and latencies reported every interval.

    python scripts/soak.py [--minutes 30] [--interval 60] [--database-url URL]

Without --database-url a throwaway PostgreSQL cluster is started (initdb from the
machine's binaries, as the tests do). The load, from a few client threads:
ImportTraces of small generated batches, ListTraces pages, BuildDataset of new
versions, ExportDataset of the newest dataset, WatchTrainingRun of the current
run, and one training run at a time (tiny preset, no exact-match decoding), a new
one when it ends. Each interval prints a JSON line: calls per second, the count of
each status code, p99 latency per call kind, and the server's RSS (with its
training and inference workers apart). The last line sums up: INTERNAL must be 0
and the server's RSS should end where it settled.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import psutil

from _bench import running_server
from _postgres import PostgresCluster
from tunixrt import Client, TunixRtError
from tunixrt.generators import generate_jsonl

WATCHED_STEPS = 2_000


class Tally:
    """Codes and latencies of the calls made since the last report."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.codes: collections.Counter[str] = collections.Counter()
        self.seconds: dict[str, list[float]] = collections.defaultdict(list)
        self.total: collections.Counter[str] = collections.Counter()

    def call(self, kind: str, fn: Callable[..., object], *args: Any) -> None:
        began = time.perf_counter()
        try:
            fn(*args)
            code = "OK"
        except TunixRtError as exc:
            code = exc.code.name
        except grpc.RpcError as exc:
            code = exc.code().name
        with self._lock:
            self.codes[code] += 1
            self.total[code] += 1
            self.seconds[kind].append(time.perf_counter() - began)

    def take(self) -> tuple[collections.Counter[str], dict[str, list[float]]]:
        with self._lock:
            codes, seconds = self.codes, self.seconds
            self.codes, self.seconds = collections.Counter(), collections.defaultdict(list)
        return codes, seconds


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


def load(address: str, tally: Tally, stop: threading.Event, worker: int) -> None:
    """One client's loop over the call kinds."""
    with Client(address, timeout=120) as rt:
        for n in itertools.count():
            if stop.is_set():
                return
            seed = worker * 1_000_000 + n
            tally.call("import", rt.import_jsonl, generate_jsonl("arithmetic", 200, seed=seed))
            tally.call("list", lambda: list(itertools.islice(rt.list_traces(page_size=100), 300)))
            if n % 5 == 0:
                tally.call("build", partial(rt.build_dataset, limit=5000), "soak", f"w{worker}n{n}")
            if n % 3 == 0:
                newest = list(itertools.islice(rt.list_datasets(page_size=1), 1))
                if newest:
                    tally.call(
                        "export",
                        lambda name: sum(1 for _ in rt.export_chunks(name)),
                        newest[0].name,
                    )


def train_and_watch(address: str, tally: Tally, stop: threading.Event) -> None:
    """One run at a time, watched from its first event to its end."""
    hp = {"max_steps": WATCHED_STEPS, "eval_every_steps": -1, "max_seq_len": 128}
    with Client(address, timeout=120) as rt:
        rt.import_jsonl(generate_jsonl("high_card_duel", 500, seed=7))
        rt.build_dataset("soak-train", "v1", eval_fraction=0.1)
        while not stop.is_set():
            run = rt.create_training_run("soak-train-v1", hyperparameters=hp)

            def watch(name: str = run.name) -> None:
                for _ in rt.watch_training_run(name):
                    if stop.is_set():
                        rt.cancel_training_run(name)
                        break

            tally.call("watch", watch)


def rss_mb(pid: int) -> tuple[float, float]:
    """The server's RSS, and its child processes' together (MB)."""
    server = psutil.Process(pid)
    children = sum(c.memory_info().rss for c in server.children(recursive=True))
    return server.memory_info().rss / 1e6, children / 1e6


def soak(address: str, pid: int, minutes: float, interval: float, clients: int) -> None:
    tally, stop = Tally(), threading.Event()
    threads = [
        threading.Thread(target=load, args=(address, tally, stop, w), daemon=True)
        for w in range(clients)
    ]
    threads.append(threading.Thread(target=train_and_watch, args=(address, tally, stop)))
    for thread in threads:
        thread.start()
    began = time.monotonic()
    rss: list[float] = []
    while (elapsed := time.monotonic() - began) < minutes * 60:
        time.sleep(min(interval, minutes * 60 - elapsed))
        codes, seconds = tally.take()
        server, workers = rss_mb(pid)
        rss.append(server)
        calls = sum(codes.values())
        print(
            json.dumps(
                {
                    "minute": round((time.monotonic() - began) / 60, 1),
                    "calls_per_s": round(calls / interval, 1),
                    "codes": dict(codes),
                    "p99_ms": {k: round(p99(v) * 1000, 1) for k, v in sorted(seconds.items())},
                    "server_rss_mb": round(server, 1),
                    "workers_rss_mb": round(workers, 1),
                }
            ),
            flush=True,
        )
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    print(
        json.dumps(
            {
                "summary": True,
                "minutes": minutes,
                "codes": dict(tally.total),
                "internal": tally.total.get("INTERNAL", 0),
                "server_rss_mb_first_last_max": [rss[0], rss[-1], max(rss)] if rss else [],
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between reports")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tunixrt-soak-") as tmp:
        cluster = None
        url = args.database_url
        if not url:
            root = Path(tempfile.mkdtemp(prefix="tunixrt-soak-pg-"))
            cluster = PostgresCluster(root)
            url = cluster.new_database()
        try:
            with running_server(Path(tmp) / "data", "--database-url", url) as (address, pid):
                soak(address, pid, args.minutes, args.interval, args.clients)
        finally:
            if cluster is not None:
                cluster.stop("fast")
                shutil.rmtree(cluster.data.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
