"""The asyncio SDK, for monitors that follow many runs at once on one event loop.

    async with AsyncClient("127.0.0.1:50051") as rt:
        async for event in rt.watch_training_run(name):
            ...

Same channel options, auth and errors as the sync `Client`; it covers what a
monitor reads: runs, their event streams, datasets and traces.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from .client import auth_metadata, channel_options, credentials
from .convert import run_state
from .errors import from_rpc_error
from .stream import RECONNECT, RECONNECT_GIVE_UP_S
from .v1 import (
    dataset_pb2,
    dataset_pb2_grpc,
    trace_pb2,
    trace_pb2_grpc,
    training_pb2,
    training_pb2_grpc,
)

T = TypeVar("T")


class AsyncClient:
    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        root_certificates: bytes | None = None,
        tls: bool = False,
        timeout: float = 60.0,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self._metadata = auth_metadata(token)
        creds = credentials(tls, root_certificates)
        self.channel = (
            grpc.aio.secure_channel(address, creds, options=channel_options())
            if creds
            else grpc.aio.insecure_channel(address, options=channel_options())
        )
        self.traces = trace_pb2_grpc.TraceServiceStub(self.channel)
        self.datasets = dataset_pb2_grpc.DatasetServiceStub(self.channel)
        self.training = training_pb2_grpc.TrainingServiceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _call(self, method: Callable[..., Awaitable[T]], request: Any) -> T:
        try:
            return await method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    async def get_training_run(self, name: str) -> training_pb2.TrainingRun:
        request = training_pb2.GetTrainingRunRequest(name=name)
        return await self._call(self.training.GetTrainingRun, request)

    async def list_training_runs(
        self, *, state: str = "", page_size: int = 0
    ) -> AsyncIterator[training_pb2.TrainingRun]:
        state_value = run_state(state or "UNSPECIFIED")
        token = ""
        while True:
            request = training_pb2.ListTrainingRunsRequest(
                page_size=page_size, page_token=token, state=state_value
            )
            page = await self._call(self.training.ListTrainingRuns, request)
            for run in page.training_runs:
                yield run
            token = page.next_page_token
            if not token:
                return

    async def watch_training_run(
        self, name: str, *, since_step: int = 0, after_sequence: int = 0
    ) -> AsyncIterator[training_pb2.TrainingEvent]:
        """History, then live events, until the run ends. Leaving the loop early
        cancels the call. A stream broken by UNAVAILABLE (a server restarting)
        reopens after the last event it gave, as the sync Client's does, for up
        to RECONNECT_GIVE_UP_S."""
        last, failing_since, delays = after_sequence, 0.0, RECONNECT.delays()
        while True:
            request = training_pb2.WatchTrainingRunRequest(
                name=name, since_step=0 if last else since_step, after_sequence=last
            )
            call = self.training.WatchTrainingRun(request, metadata=self._metadata)
            try:
                async for event in call:
                    last, failing_since = event.sequence, 0.0
                    yield event
                return
            except grpc.RpcError as exc:
                now = time.monotonic()
                if not failing_since:  # a new outage: the backoff starts over
                    failing_since, delays = now, RECONNECT.delays()
                if (
                    exc.code() != grpc.StatusCode.UNAVAILABLE
                    or now - failing_since > RECONNECT_GIVE_UP_S
                ):
                    raise from_rpc_error(exc) from None
            finally:
                call.cancel()
            await asyncio.sleep(next(delays))

    async def get_dataset(self, name: str) -> dataset_pb2.Dataset:
        return await self._call(self.datasets.GetDataset, dataset_pb2.GetDatasetRequest(name=name))

    async def get_trace(self, name: str) -> trace_pb2.Trace:
        return await self._call(self.traces.GetTrace, trace_pb2.GetTraceRequest(name=name))
