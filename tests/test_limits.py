"""Limits: message size, page size, queued runs, stream duration; each refusal a clear code."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from conftest import TRACES_JSONL, ServerProcess
from tunixrt import Client, DeadlineExceeded, InvalidArgument, ResourceExhausted
from tunixrt.v1 import trace_pb2


def test_message_and_page_size(server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory(env={"TUNIXRT_MAX_RECEIVE_MESSAGE_MB": "1"})
    with server.client() as client:
        big = TRACES_JSONL.read_bytes() * 8  # ~2 MB in one message
        with pytest.raises(ResourceExhausted):
            client.import_traces([trace_pb2.ImportTracesRequest(jsonl=big)])
        assert client.import_jsonl(TRACES_JSONL).accepted_count == 550  # 1 MiB batches pass
        with pytest.raises(InvalidArgument, match="page_size"):
            next(client.list_traces(page_size=-1))
        page = client.traces.ListTraces(trace_pb2.ListTracesRequest(page_size=1_000_000))
        assert len(page.traces) == 550  # coerced to the 1,000 maximum, not refused


def test_queue_and_stream_limits(server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory(
        env={
            "TUNIXRT_MAX_CONCURRENT_RUNS": "0",  # nothing trains: runs stay queued
            "TUNIXRT_MAX_QUEUED_RUNS": "2",
            "TUNIXRT_MAX_STREAM_S": "1.5",
        }
    )
    with server.client() as client:
        client.import_jsonl(TRACES_JSONL)
        client.build_dataset("lim", "v1")
        runs = [client.create_training_run("lim-v1") for _ in range(2)]
        with pytest.raises(ResourceExhausted, match="max_queued_runs") as err:
            client.create_training_run("lim-v1")
        assert err.value.reason == "TOO_MANY_QUEUED_RUNS"

        started = time.monotonic()
        seen = []
        with pytest.raises(DeadlineExceeded, match="max_stream_s") as stream_err:
            for event in client.watch_training_run(runs[0].name):
                seen.append(event.sequence)
        assert stream_err.value.reason == "STREAM_TOO_LONG"
        assert seen == [1] and 1.4 < time.monotonic() - started < 10
        with pytest.raises(DeadlineExceeded):  # the client's own deadline
            list(client.watch_training_run(runs[1].name, timeout=0.5))
        for run in runs:
            client.cancel_training_run(run.name)
        assert client.create_training_run("lim-v1").state == 1  # room again


def test_an_error_echoing_a_huge_value_is_still_its_own_code(client: Client) -> None:
    """Errors quote what was wrong; a 100 KB name must not push the status past gRPC's
    trailer limit (which answers RESOURCE_EXHAUSTED, at random, in its place)."""
    for name in ("x" * 100_000, "\x01\U0001f600" * 20_000, "datasets/" + "é" * 50_000):
        for _ in range(20):
            with pytest.raises(InvalidArgument) as err:
                client.get_dataset(name)
            assert "chars)" in str(err.value) and len(str(err.value)) < 2_000
    many = {"max_steps": -1, "batch_size": -1, "learning_rate": -1.0, "warmup_steps": -1}
    with pytest.raises(InvalidArgument) as err:
        client.create_training_run("x" * 50_000, hyperparameters=many)
    assert len(err.value.field_violations) >= 4
