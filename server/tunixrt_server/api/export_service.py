"""tunixrt.v1.ExportService: datasets and listed traces out as streamed JSONL, and
Tunix run manifests."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import yaml

from tunixrt.v1 import export_pb2, export_pb2_grpc

from ..core import manifests
from ..core.errors import ApiError, FieldViolation, bad_field, invalid_argument
from ..core.filters import parse_filter
from ..core.names import parse_uuid_name
from ..core.rendering import NEEDS_META, ExportRow, render_lines
from ..core.runspec import DEFAULT_PRESET, MAX_SYSTEM_CHARS, Hyperparameters
from ..core.selection import EVAL
from ..storage.datasets import DatasetStore
from ..storage.traces import TraceStore
from . import metrics
from .convert import EXPORT_FORMATS, resolve_dataset, split_filter

DEFAULT_ROWS_PER_CHUNK = 256
MAX_ROWS_PER_CHUNK = 4_096
MAX_CHUNK_BYTES = 1024 * 1024  # clients refuse messages over 4 MiB by default
MAX_PAGE_ROWS = 4_096
PAGE_CHAR_BUDGET = 4_000_000  # a page of huge traces shrinks to about this much text
MAX_TRACE_NAMES = 10_000
TRACE_PAGE = 1_000
MAX_MISSING_NAMED = 20

# A page reader: given where the last page ended, the next position and its
# rendered lines (no lines: the end).
ReadPage = Callable[[int], tuple[int, list[bytes]]]


def _check(
    request: export_pb2.ExportDatasetRequest | export_pb2.ExportTracesRequest,
) -> tuple[str, int]:
    """The format name and rows per chunk of an export request."""
    if request.format not in EXPORT_FORMATS:
        raise bad_field("format", f"unknown format {request.format}")
    if not 0 <= request.rows_per_chunk <= MAX_ROWS_PER_CHUNK:
        raise bad_field(
            "rows_per_chunk", f"must be 0..{MAX_ROWS_PER_CHUNK} (0 means {DEFAULT_ROWS_PER_CHUNK})"
        )
    if len(request.system_instruction) > MAX_SYSTEM_CHARS:
        raise bad_field("system_instruction", f"must be at most {MAX_SYSTEM_CHARS:,} characters")
    if request.start_row < 0:
        raise bad_field("start_row", f"must be >= 0, got {request.start_row}")
    return EXPORT_FORMATS[request.format], request.rows_per_chunk or DEFAULT_ROWS_PER_CHUNK


async def _stream(
    read: ReadPage,
    per_chunk: int,
    start_row: int,
    fmt: str,
    expected: int,
    cut_short: Callable[[int], ApiError],
) -> AsyncIterator[export_pb2.ExportDatasetResponse]:
    """Chunks of rendered rows, then the summary of the whole export.

    Pages are read and rendered in a worker thread while the previous one is
    being sent: memory stays bounded by two pages, and a client that cancels
    or misses its deadline stops the loop at the next yield. Rows before
    `start_row` are hashed and counted but not sent, so the summary verifies
    a resumed file whole. Pages are read in separate transactions, so rows
    deleted meanwhile would simply be missing: an export that read fewer than
    `expected` rows raises `cut_short(rows)` instead of its summary.
    """
    digest = hashlib.sha256()
    rows = size = 0

    def prefetch(after: int) -> asyncio.Future[tuple[int, list[bytes]]]:
        return asyncio.ensure_future(asyncio.to_thread(read, after))

    page = prefetch(-1)
    try:
        while True:
            after, lines = await page
            if not lines:
                break
            page = prefetch(after)
            skipped = max(0, min(len(lines), start_row - rows))
            if skipped:
                data = b"".join(lines[:skipped])
                digest.update(data)
                rows, size = rows + skipped, size + len(data)
            for start in range(skipped, len(lines), per_chunk):
                batch = lines[start : start + per_chunk]
                data = b"".join(batch)
                digest.update(data)
                rows += len(batch)
                size += len(data)
                for message in _chunks(data, len(batch)):
                    yield message
                metrics.EXPORTED_ROWS.labels(fmt).inc(len(batch))
                metrics.EXPORTED_BYTES.labels(fmt).inc(len(data))
    finally:
        page.cancel()
    if rows != expected:
        raise cut_short(rows)
    yield export_pb2.ExportDatasetResponse(
        summary=export_pb2.ExportSummary(
            row_count=rows,
            byte_count=size,
            sha256=digest.hexdigest(),
            expected_row_count=expected,
        )
    )


class ExportService(export_pb2_grpc.ExportServiceServicer):
    def __init__(self, store: DatasetStore, traces: TraceStore) -> None:
        self._store = store
        self._traces = traces

    async def ExportDataset(
        self, request: export_pb2.ExportDatasetRequest, context: Any
    ) -> AsyncIterator[export_pb2.ExportDatasetResponse]:
        fmt, per_chunk = _check(request)
        split = split_filter(request.split)
        ds = await resolve_dataset(self._store, request.dataset, "dataset")
        avg_chars = max(1, int(ds.stats.get("avg_chars", 1)))
        page_rows = max(16, min(MAX_PAGE_ROWS, PAGE_CHAR_BUDGET // avg_chars))

        def read(after: int) -> tuple[int, list[bytes]]:
            after, rows = self._store.export_page(
                ds.seq, split, after, page_rows, meta=fmt in NEEDS_META
            )
            return after, render_lines(fmt, rows, request.system_instruction)

        expected = _split_rows(ds.stats, split)

        def cut_short(rows: int) -> ApiError:
            return ApiError(
                "NOT_FOUND",
                f"datasets/{ds.key} was deleted while it was being exported: {rows:,} of "
                f"{expected:,} rows were read; the rows sent are not the whole export",
                "DATASET_DELETED_DURING_EXPORT",
                resource=("dataset", f"datasets/{ds.key}"),
            )

        async for message in _stream(read, per_chunk, request.start_row, fmt, expected, cut_short):
            yield message

    async def ExportTraces(
        self, request: export_pb2.ExportTracesRequest, context: Any
    ) -> AsyncIterator[export_pb2.ExportDatasetResponse]:
        fmt, per_chunk = _check(request)
        if request.filter or request.limit:
            ids = await self._matching(request)
        else:
            ids = _named(list(request.names))
            missing = await asyncio.to_thread(self._traces.missing, ids)
            if missing:
                raise _unknown_traces(missing)

        def read(after: int) -> tuple[int, list[bytes]]:
            chunk = ids[after + 1 : after + 1 + TRACE_PAGE]
            found = self._traces.export_rows(chunk, meta=fmt in NEEDS_META)
            if len(found) < len(set(chunk)):  # deleted since the check
                raise _unknown_traces([t for t in chunk if t not in found])
            rows: list[ExportRow] = [found[t] for t in chunk]
            return after + len(chunk), render_lines(fmt, rows, request.system_instruction)

        def cut_short(rows: int) -> ApiError:  # read() raises first: a page is all or none
            return ApiError(
                "ABORTED",
                f"{rows:,} of {len(ids):,} traces were read; retry",
                "EXPORT_CUT_SHORT",
            )

        async for message in _stream(read, per_chunk, request.start_row, fmt, len(ids), cut_short):
            yield message

    async def _matching(self, request: export_pb2.ExportTracesRequest) -> list[str]:
        """The ids an ExportTraces by filter exports: the newest `limit` that match."""
        if request.names:
            raise bad_field("filter", "give names or a filter, not both")
        if not 0 <= request.limit <= MAX_TRACE_NAMES:
            raise bad_field(
                "limit", f"must be 0..{MAX_TRACE_NAMES:,} (0 means {MAX_TRACE_NAMES:,})"
            )
        conditions = parse_filter(request.filter)
        limit = request.limit or MAX_TRACE_NAMES
        return await asyncio.to_thread(self._traces.matching_ids, conditions, limit)

    async def GetTrainingManifest(
        self, request: export_pb2.GetTrainingManifestRequest, context: Any
    ) -> export_pb2.GetTrainingManifestResponse:
        if request.style not in export_pb2.ManifestStyle.values():
            raise bad_field("style", f"unknown style {request.style}")
        model = manifests.check_model(request.model or DEFAULT_PRESET)
        ds = await resolve_dataset(self._store, request.dataset, "dataset")
        overrides = Hyperparameters.parse_overrides(request.hyperparameters)
        hp = Hyperparameters.resolve(overrides, preset=model)
        if hp.num_epochs and "max_steps" in overrides:
            raise bad_field("hyperparameters[num_epochs]", "give num_epochs or max_steps, not both")
        dataset = {
            "name": f"datasets/{ds.key}",
            "key": ds.key,
            "build_id": ds.build_id,
            "train_count": ds.stats["train_count"],
            "eval_count": ds.stats["eval_count"],
        }
        build = (
            manifests.tunix_rt
            if request.style == export_pb2.MANIFEST_STYLE_TUNIX_RT
            else manifests.tunixrt_v1
        )
        manifest = build(dataset, model, hp)
        return export_pb2.GetTrainingManifestResponse(
            yaml=yaml.safe_dump(manifest, sort_keys=False)
        )


def _named(names: list[str]) -> list[str]:
    """The trace ids of an ExportTraces by names, or INVALID_ARGUMENT."""
    if not 0 < len(names) <= MAX_TRACE_NAMES:
        raise bad_field("names", f"give 1..{MAX_TRACE_NAMES:,} trace names, or a filter")
    ids, bad = [], []
    for n, name in enumerate(names):
        try:
            ids.append(parse_uuid_name(name, "traces", f"names[{n}]"))
        except ApiError as exc:
            bad += exc.violations
    if bad:
        raise invalid_argument(bad)
    return ids


def _split_rows(stats: dict[str, Any], split: int | None) -> int:
    """The rows a split of a dataset holds (None: both splits)."""
    if split is None:
        return int(stats["trace_count"])
    return int(stats["eval_count"] if split == EVAL else stats["train_count"])


def _unknown_traces(trace_ids: list[str]) -> ApiError:
    named = ", ".join(f"traces/{t}" for t in trace_ids[:MAX_MISSING_NAMED])
    more = len(trace_ids) - MAX_MISSING_NAMED
    return ApiError(
        "NOT_FOUND",
        f"{len(trace_ids)} trace(s) do not exist: {named}{f' and {more} more' if more > 0 else ''}",
        "TRACE_NOT_FOUND",
        violations=[FieldViolation("names", f"traces/{t} does not exist") for t in trace_ids],
        resource=("trace", f"traces/{trace_ids[0]}"),
    )


def _chunks(data: bytes, row_count: int) -> list[export_pb2.ExportDatasetResponse]:
    """One message, or several when a single row is larger than a message may be."""
    if len(data) <= MAX_CHUNK_BYTES:
        return [
            export_pb2.ExportDatasetResponse(
                chunk=export_pb2.ExportChunk(data=data, row_count=row_count)
            )
        ]
    pieces = [data[i : i + MAX_CHUNK_BYTES] for i in range(0, len(data), MAX_CHUNK_BYTES)]
    return [
        export_pb2.ExportDatasetResponse(
            chunk=export_pb2.ExportChunk(data=p, row_count=p.count(b"\n"))
        )
        for p in pieces
    ]
