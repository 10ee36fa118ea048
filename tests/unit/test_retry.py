"""The SDK's retry rules (client/tunixrt/retry.py), without a server."""

from __future__ import annotations

import itertools
from typing import Any

import grpc
import pytest

from tunixrt import retry
from tunixrt.v1 import trace_pb2, training_pb2


class Failure(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code


def test_reads_and_deduplicated_creates_are_idempotent_other_writes_are_not() -> None:
    assert retry.idempotent(trace_pb2.GetTraceRequest())
    assert retry.idempotent(trace_pb2.ListTracesRequest())
    assert retry.idempotent(trace_pb2.CreateTraceRequest(request_id="once"))
    assert not retry.idempotent(trace_pb2.CreateTraceRequest())
    assert not retry.idempotent(training_pb2.CancelTrainingRunRequest())


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    delays = list(itertools.islice(retry.Backoff(0.1, 1.0, 2.0).delays(), 12))
    ceilings = [min(1.0, 0.1 * 2**n) for n in range(12)]
    assert all(0.0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert max(delays[6:]) <= 1.0 and len(set(delays)) > 1


def test_unavailable_is_retried_until_the_call_succeeds() -> None:
    outcomes: list[Any] = [Failure(grpc.StatusCode.UNAVAILABLE)] * 3 + ["ok"]
    timeouts: list[float] = []

    def invoke(left: float) -> str:
        timeouts.append(left)
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return str(outcome)

    fast = retry.Backoff(0.001, 0.002)
    assert retry.call(invoke, trace_pb2.GetTraceRequest(), 10.0, fast) == "ok"
    assert len(timeouts) == 4 and timeouts == sorted(timeouts, reverse=True)  # one deadline


def test_other_codes_and_unsafe_writes_fail_at_once() -> None:
    calls = []

    def invoke(code: grpc.StatusCode) -> Any:
        def fail(left: float) -> None:
            calls.append(code)
            raise Failure(code)

        return fail

    fast = retry.Backoff(0.001, 0.002)
    with pytest.raises(Failure):
        retry.call(invoke(grpc.StatusCode.INVALID_ARGUMENT), trace_pb2.GetTraceRequest(), 5, fast)
    with pytest.raises(Failure):
        retry.call(invoke(grpc.StatusCode.UNAVAILABLE), trace_pb2.CreateTraceRequest(), 5, fast)
    assert len(calls) == 2


def test_a_retry_that_runs_out_of_time_reports_the_outage_not_the_clock() -> None:
    outcomes = [Failure(grpc.StatusCode.UNAVAILABLE), Failure(grpc.StatusCode.DEADLINE_EXCEEDED)]

    def invoke(left: float) -> None:
        raise outcomes.pop(0)

    with pytest.raises(Failure) as err:
        retry.call(invoke, trace_pb2.GetTraceRequest(), 10.0, retry.Backoff(0.001, 0.002))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE and not outcomes
