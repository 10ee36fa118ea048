"""tunixrt.v1.TraceService."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import empty_pb2

from tunixrt import generators
from tunixrt.v1 import trace_pb2, trace_pb2_grpc

from ..core import generation
from ..core.errors import (
    ApiError,
    FieldViolation,
    bad_field,
    failed_precondition,
    invalid_argument,
    not_found,
)
from ..core.filters import parse_filter
from ..core.names import check_request_id, parse_uuid_name
from ..core.pagination import paginate
from ..core.validation import TraceInvalid, trace_from_proto
from ..storage.traces import TraceStore, new_rows
from ..storage.usage import TraceInUse
from . import metrics
from .batch_parser import BatchParser
from .convert import full_view, new_trace_to_proto, trace_to_proto
from .trace_batches import check_batch, import_stamp

MAX_REPORTED_ERRORS = 1_000

Context = grpc.aio.ServicerContext[Any, Any]


def _prefixed(exc: TraceInvalid, prefix: str) -> list[FieldViolation]:
    return [FieldViolation(f"{prefix}.{v.field}", v.description) for v in exc.violations]


class TraceService(trace_pb2_grpc.TraceServiceServicer):
    def __init__(self, store: TraceStore, parser: BatchParser) -> None:
        self._store = store
        self._parser = parser

    def close(self) -> None:
        self._parser.close()

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
        full = full_view(request.view)
        stored = await asyncio.to_thread(lambda: self._store.get(trace_id, full=full))
        if stored is None:
            raise not_found("trace", f"traces/{trace_id}")
        return trace_to_proto(stored)

    async def ListTraces(
        self, request: trace_pb2.ListTracesRequest, context: Context
    ) -> trace_pb2.ListTracesResponse:
        conditions = parse_filter(request.filter)
        full = full_view(request.view)
        page, token = await paginate(
            lambda limit, cursor: self._store.page(conditions, limit, cursor, full=full),
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

    async def GenerateTraces(
        self, request: trace_pb2.GenerateTracesRequest, context: Context
    ) -> trace_pb2.GenerateTracesResponse:
        options = generation.check(request.generator, request.count, request.options)
        full = full_view(request.view)
        if full and request.count > generation.MAX_FULL_VIEW:
            raise bad_field(
                "view",
                f"a FULL view returns at most {generation.MAX_FULL_VIEW:,} traces; ask for "
                "TRACE_VIEW_BASIC (names and meta), then export the traces",
            )
        traces = await asyncio.to_thread(
            generation.generate, request.generator, request.count, request.seed, options
        )
        response = trace_pb2.GenerateTracesResponse(generator_version=generators.VERSION)
        if request.persist:
            rows = new_rows(traces)
            response.stored_count = await asyncio.to_thread(self._store.insert_rows, rows)
            metrics.TRACES_STORED.inc(response.stored_count)
            response.traces.extend(
                new_trace_to_proto(t, row[0], row[1], full=full)
                for t, row in zip(traces, rows, strict=True)
            )
        else:
            response.traces.extend(new_trace_to_proto(t, full=full) for t in traces)
        return response

    async def ListGenerators(
        self, request: trace_pb2.ListGeneratorsRequest, context: Context
    ) -> trace_pb2.ListGeneratorsResponse:
        gens = generators
        return trace_pb2.ListGeneratorsResponse(
            generators=[
                trace_pb2.TraceGenerator(
                    name=name,
                    version=gens.VERSION,
                    description=gens.describe(name),
                    parameters=[
                        trace_pb2.GeneratorParameter(
                            name=p.name,
                            description=p.description,
                            choices=p.choices,
                            default_value=p.default,
                        )
                        for p in gens.PARAMETERS[name]
                    ],
                    max_count=generation.MAX_COUNT,
                )
                for name in gens.GENERATORS
            ]
        )

    async def ImportTraces(
        self, request_iterator: AsyncIterator[trace_pb2.ImportTracesRequest], context: Context
    ) -> trace_pb2.ImportTracesResponse:
        result = trace_pb2.ImportTracesResponse()
        seen = 0
        batch_index = 0
        # Parsing batch k+1 (in the parser's process) overlaps the INSERT of
        # batch k; inserts stay in stream order.
        pending: asyncio.Future[int] | None = None

        async def settle() -> None:
            nonlocal pending
            if pending is not None:
                stored = await pending
                pending = None
                metrics.TRACES_STORED.inc(stored)
                result.accepted_count += stored
                result.accepted_batch_count += 1

        stamp: dict[str, str] = {}
        try:
            async for request in request_iterator:
                where = f"requests[{batch_index}]"
                stamp = import_stamp(request, f"{where}.", batch_index == 0, stamp)
                batch = await check_batch(self._parser, request, where, pending is not None, stamp)
                if batch.violations:
                    metrics.TRACES_REJECTED.inc(batch.item_count)
                    result.rejected_count += batch.item_count
                    result.rejected_batch_count += 1
                    room = max(MAX_REPORTED_ERRORS - len(result.errors), 0)
                    result.errors.extend(
                        trace_pb2.ImportTraceError(
                            index=seen + n,
                            batch_index=batch_index,
                            item_index=n,
                            field=field,
                            description=description,
                        )
                        for n, field, description in batch.violations[:room]
                    )
                elif batch.rows:
                    await settle()
                    pending = asyncio.ensure_future(
                        asyncio.to_thread(self._store.insert_rows, batch.rows)
                    )
                seen += batch.item_count
                batch_index += 1
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

    async def BatchCreateTraces(
        self, request: trace_pb2.BatchCreateTracesRequest, context: Context
    ) -> trace_pb2.BatchCreateTracesResponse:
        # One ImportTraces batch, checked by the same code; unary, so any invalid
        # item is the call's error (AIP-233) rather than a line of a response.
        batch_request = trace_pb2.ImportTracesRequest(
            traces=request.traces,
            jsonl=request.jsonl,
            source=request.source,
            source_file=request.source_file,
        )
        stamp = import_stamp(batch_request, "", True, {})
        batch = await check_batch(self._parser, batch_request, "traces", False, stamp)
        if batch.violations:
            metrics.TRACES_REJECTED.inc(batch.item_count)
            items = "jsonl" if request.jsonl else "traces"
            raise invalid_argument(
                [FieldViolation(f"{items}[{n}].{f}", d) for n, f, d in batch.violations],
                reason="INVALID_TRACE",
                message=f"{len(batch.violations)} of {batch.item_count} traces are invalid "
                f"(first: {items}[{batch.violations[0][0]}].{batch.violations[0][1]}: "
                f"{batch.violations[0][2]}); nothing was stored",
            )
        response = trace_pb2.BatchCreateTracesResponse(created_count=batch.item_count)
        if request.validate_only:
            return response
        stored = await asyncio.shield(asyncio.to_thread(self._store.insert_rows, batch.rows))
        metrics.TRACES_STORED.inc(stored)
        response.names.extend(f"traces/{row[0]}" for row in batch.rows)
        return response
