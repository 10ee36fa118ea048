"""Prometheus metrics of the server (`--metrics-address HOST:PORT`, prometheus-client).

Counted where things happen: every RPC by method and final code, with its
latency, in the interceptor; streams open now; traces stored by CreateTrace
and ImportTraces; rows and bytes sent by exports. Training runs by state and
the step time of running runs are read from the database when scraped, so
they are right whichever server (or worker) changed them.
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..core.run_state import RunState
from ..storage.runs import RunStore

REGISTRY = CollectorRegistry()

RPCS = Counter(
    "tunixrt_rpcs",
    "RPCs handled, by method and final status code",
    ["method", "code"],
    registry=REGISTRY,
)
RPC_SECONDS = Histogram(
    "tunixrt_rpc_seconds",
    "RPC latency (whole stream for streaming calls), by method",
    ["method"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
    registry=REGISTRY,
)
OPEN_STREAMS = Gauge(
    "tunixrt_open_streams", "Streaming calls in progress, by method", ["method"], registry=REGISTRY
)
TRACES_STORED = Counter(
    "tunixrt_traces_stored", "Traces stored by CreateTrace and ImportTraces", registry=REGISTRY
)
TRACES_REJECTED = Counter(
    "tunixrt_traces_rejected", "Traces of ImportTraces batches refused", registry=REGISTRY
)
EXPORTED_ROWS = Counter(
    "tunixrt_exported_rows", "JSONL rows sent by exports, by format", ["format"], registry=REGISTRY
)
EXPORTED_BYTES = Counter(
    "tunixrt_exported_bytes",
    "JSONL bytes sent by exports, by format",
    ["format"],
    registry=REGISTRY,
)


class _RunsCollector(Collector):
    """Runs by state, and each running run's step and seconds per step, at scrape time."""

    def __init__(self, runs: RunStore) -> None:
        self._runs = runs

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_state = GaugeMetricFamily(
            "tunixrt_training_runs", "Training runs, by state", labels=["state"]
        )
        step = GaugeMetricFamily(
            "tunixrt_run_step", "Latest step of each running run", labels=["run"]
        )
        seconds = GaugeMetricFamily(
            "tunixrt_run_seconds_per_step",
            "Mean worker step time of each running run (after its compile step)",
            labels=["run"],
        )
        try:
            counts = self._runs.count_by_state()
            running = self._runs.in_state([RunState.RUNNING])
        except sa.exc.SQLAlchemyError:
            return  # the database is away: say nothing rather than something wrong
        for state in RunState:
            by_state.add_metric([state.name], counts.get(state, 0))
        for run in running:
            step.add_metric([run.id], float(run.metrics.get("step", 0)))
            if "seconds_per_step" in run.metrics:
                seconds.add_metric([run.id], float(run.metrics["seconds_per_step"]))
        yield by_state
        yield step
        yield seconds


def serve(address: str, runs: RunStore) -> int:
    """Serve /metrics on `address` (HOST:PORT; port 0 picks one); returns the port."""
    REGISTRY.register(_RunsCollector(runs))
    host, _, port = address.rpartition(":")
    server, _thread = start_http_server(int(port), addr=host or "0.0.0.0", registry=REGISTRY)
    return int(server.server_port)
