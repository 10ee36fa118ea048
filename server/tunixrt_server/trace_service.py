"""tunixrt.v1.TraceService."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import empty_pb2

from tunixrt.v1 import trace_pb2, trace_pb2_grpc

from . import metrics
from .convert import trace_to_proto
from .errors import (
    ApiError,
    FieldViolation,
    bad_field,
    failed_precondition,
    invalid_argument,
    not_found,
)
from .filters import parse_filter
from .names import check_request_id, parse_uuid_name
from .pagination import paginate
from .storage.traces import TraceStore
from .storage.usage import TraceInUse
from .validation import (
    NewTrace,
    TraceInvalid,
    parse_jsonl,
    trace_from_line,
    trace_from_proto,
)

MAX_BATCH_TRACES = 10_000
MAX_REPORTED_ERRORS = 1_000

Context = grpc.aio.ServicerContext[Any, Any]


def _prefixed(exc: TraceInvalid, prefix: str) -> list[FieldViolation]:
    return [FieldViolation(f"{prefix}.{v.field}", v.description) for v in exc.violations]


class TraceService(trace_pb2_grpc.TraceServiceServicer):
    def __init__(self, store: TraceStore) -> None:
        self._store = store

    async def CreateTrace(
        self, request: trace_pb2.CreateTraceRequest, context: Context
    ) -> trace_pb2.Trace:
        if not request.HasField("trace"):
            raise bad_field("trace", "is required")
        request_id = check_request_id(request.request_id)
        try:
            new = trace_from_proto(request.trace)
        except TraceInvalid as exc:
            raise invalid_argument(_prefixed(exc, "trace"), reason="INVALID_TRACE") from None
        stored, created = await asyncio.to_thread(self._store.create, new, request_id)
        if created:
            metrics.TRACES_STORED.inc()
        return trace_to_proto(stored)

    async def GetTrace(
        self, request: trace_pb2.GetTraceRequest, context: Context
    ) -> trace_pb2.Trace:
        trace_id = parse_uuid_name(request.name, "traces")
        stored = await asyncio.to_thread(self._store.get, trace_id)
        if stored is None:
            raise not_found("trace", f"traces/{trace_id}")
        return trace_to_proto(stored)

    async def ListTraces(
        self, request: trace_pb2.ListTracesRequest, context: Context
    ) -> trace_pb2.ListTracesResponse:
        conditions = parse_filter(request.filter)
        page, token = await paginate(
            lambda limit, cursor: self._store.page(conditions, limit, cursor),
            lambda trace: trace.seq,
            requested_size=request.page_size,
            page_token=request.page_token,
            query=request.filter,
        )
        return trace_pb2.ListTracesResponse(
            traces=[trace_to_proto(t) for t in page], next_page_token=token
        )

    async def DeleteTrace(
        self, request: trace_pb2.DeleteTraceRequest, context: Context
    ) -> empty_pb2.Empty:
        trace_id = parse_uuid_name(request.name, "traces")
        try:
            deleted = await asyncio.to_thread(self._store.delete, trace_id)
        except TraceInUse as exc:
            keys = ", ".join(exc.dataset_keys[:10])
            raise failed_precondition(
                f"traces/{trace_id} is used by dataset(s) {keys}; datasets are immutable, "
                "so delete those datasets first",
                reason="TRACE_IN_USE",
                subject=f"traces/{trace_id}",
            ) from None
        if not deleted:
            raise not_found("trace", f"traces/{trace_id}")
        return empty_pb2.Empty()

    def _validate_batch(
        self, request: trace_pb2.ImportTracesRequest, batch_index: int, first_index: int
    ) -> tuple[list[NewTrace], list[trace_pb2.ImportTraceError], int]:
        if request.traces and request.jsonl:
            raise bad_field(f"requests[{batch_index}]", "set traces or jsonl, not both")
        items: list[Any] = list(request.traces) if request.traces else parse_jsonl(request.jsonl)
        if len(items) > MAX_BATCH_TRACES:
            raise bad_field(
                f"requests[{batch_index}]",
                f"a batch holds at most {MAX_BATCH_TRACES:,} traces, got {len(items):,};"
                " send more messages",
            )
        convert = trace_from_proto if request.traces else trace_from_line
        valid: list[NewTrace] = []
        errors: list[trace_pb2.ImportTraceError] = []
        for n, item in enumerate(items):
            try:
                valid.append(convert(item))
            except TraceInvalid as exc:
                errors.extend(
                    trace_pb2.ImportTraceError(
                        index=first_index + n,
                        batch_index=batch_index,
                        item_index=n,
                        field=v.field,
                        description=v.description,
                    )
                    for v in exc.violations
                )
        return valid, errors, len(items)

    async def ImportTraces(
        self, request_iterator: AsyncIterator[trace_pb2.ImportTracesRequest], context: Context
    ) -> trace_pb2.ImportTracesResponse:
        result = trace_pb2.ImportTracesResponse()
        seen = 0
        batch_index = 0
        # Validation of batch k+1 overlaps the INSERT of batch k (sqlite3
        # releases the GIL while it writes); inserts stay in stream order.
        pending: asyncio.Future[int] | None = None

        async def settle() -> None:
            nonlocal pending
            if pending is not None:
                stored = await pending
                pending = None
                metrics.TRACES_STORED.inc(stored)
                result.accepted_count += stored
                result.accepted_batch_count += 1

        try:
            async for request in request_iterator:
                valid, errors, count = await asyncio.to_thread(
                    self._validate_batch, request, batch_index, seen
                )
                seen += count
                batch_index += 1
                if errors:
                    metrics.TRACES_REJECTED.inc(count)
                    result.rejected_count += count
                    result.rejected_batch_count += 1
                    room = MAX_REPORTED_ERRORS - len(result.errors)
                    result.errors.extend(errors[: max(room, 0)])
                elif valid:
                    await settle()
                    pending = asyncio.ensure_future(
                        asyncio.to_thread(self._store.insert_batch, valid)
                    )
            await settle()
        except ApiError as exc:
            # Batches before the bad one are committed; say how many.
            await settle()
            exc.metadata = {**exc.metadata, "accepted_count": str(result.accepted_count)}
            exc.message += f" ({result.accepted_count} traces of earlier batches were stored)"
            raise
        finally:
            if pending is not None:
                # The client went away mid-insert: let the transaction finish
                # (it is whole either way) before the handler unwinds.
                metrics.TRACES_STORED.inc(await asyncio.shield(pending))
        return result
