"""Prometheus metrics, scraped after a journey through the API."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import ServerProcess
from tunixrt import InvalidArgument, trace_from_dict

CREATE = "/tunixrt.v1.TraceService/CreateTrace"
IMPORT = "/tunixrt.v1.TraceService/ImportTraces"
EXPORT = "/tunixrt.v1.ExportService/ExportDataset"


def scrape(server: ServerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    url = re.search(r"metrics on (http://\S+)", server.log())
    assert url, server.log()
    text = urllib.request.urlopen(url.group(1), timeout=10).read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_a_journey(server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory(
        "--metrics-address", "127.0.0.1:0", env={"TUNIXRT_MAX_CONCURRENT_RUNS": "0"}
    )
    with server.client() as client:
        lines = [orjson.dumps({"prompt": f"q{n}", "final_answer": "a"}) for n in range(10)]
        client.import_jsonl([*lines, b'{"prompt": ""}'], batch_lines=10)  # 1 batch refused
        client.create_trace(trace_from_dict({"prompt": "one more", "final_answer": "a"}))
        with pytest.raises(InvalidArgument):
            client.create_trace(trace_from_dict({"final_answer": "no prompt"}))
        client.build_dataset("m", "v1")
        summary = client.export_to_file("m-v1", server.data_dir / "m.jsonl", format="tunix_sft")
        run = client.create_training_run("m-v1")
        client.cancel_training_run(run.name)

    seen = scrape(server)

    def value(name: str, **labels: str) -> float:
        return seen.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("tunixrt_rpcs_total", method=CREATE, code="OK") == 1
    assert value("tunixrt_rpcs_total", method=CREATE, code="INVALID_ARGUMENT") == 1
    assert value("tunixrt_rpcs_total", method=IMPORT, code="OK") == 1
    assert value("tunixrt_rpc_seconds_count", method=EXPORT) == 1
    assert value("tunixrt_open_streams", method=EXPORT) == 0
    assert value("tunixrt_traces_stored_total") == 11
    assert value("tunixrt_traces_rejected_total") == 1
    assert value("tunixrt_exported_rows_total", format="tunix_sft") == summary.row_count == 11
    assert value("tunixrt_exported_bytes_total", format="tunix_sft") == summary.byte_count
    assert value("tunixrt_training_runs", state="CANCELLED") == 1
    assert value("tunixrt_training_runs", state="RUNNING") == 0
