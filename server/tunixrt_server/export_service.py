"""tunixrt.v1.ExportService: datasets out as streamed JSONL, and Tunix run manifests."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import yaml

from tunixrt.v1 import export_pb2, export_pb2_grpc

from . import hyperparams
from .dataset_service import DatasetService, split_filter
from .errors import bad_field
from .rendering import NEEDS_META, render_lines
from .storage.datasets import DatasetStore
from .training.presets import PRESETS

DEFAULT_ROWS_PER_CHUNK = 256
MAX_ROWS_PER_CHUNK = 4_096
MAX_CHUNK_BYTES = 1024 * 1024  # clients refuse messages over 4 MiB by default
MAX_PAGE_ROWS = 4_096
PAGE_CHAR_BUDGET = 4_000_000  # a page of huge traces shrinks to about this much text
MAX_SYSTEM_CHARS = 10_000
FORMAT_NAMES = {
    export_pb2.EXPORT_FORMAT_UNSPECIFIED: "trace",
    export_pb2.EXPORT_FORMAT_TRACE: "trace",
    export_pb2.EXPORT_FORMAT_TUNIX_SFT: "tunix_sft",
    export_pb2.EXPORT_FORMAT_MESSAGES: "messages",
    export_pb2.EXPORT_FORMAT_PROMPT_COMPLETION: "prompt_completion",
}


class ExportService(export_pb2_grpc.ExportServiceServicer):
    def __init__(self, store: DatasetStore, datasets: DatasetService) -> None:
        self._store = store
        self._datasets = datasets

    def _render_page(
        self, dataset_seq: int, split: int | None, after: int, fmt: str, system: str, page_rows: int
    ) -> tuple[int, list[bytes]]:
        after, rows = self._store.export_page(
            dataset_seq, split, after, page_rows, meta=fmt in NEEDS_META
        )
        return after, render_lines(fmt, rows, system)

    async def ExportDataset(
        self, request: export_pb2.ExportDatasetRequest, context: Any
    ) -> AsyncIterator[export_pb2.ExportDatasetResponse]:
        if request.format not in FORMAT_NAMES:
            raise bad_field("format", f"unknown format {request.format}")
        if not 0 <= request.rows_per_chunk <= MAX_ROWS_PER_CHUNK:
            raise bad_field(
                "rows_per_chunk",
                f"must be 0..{MAX_ROWS_PER_CHUNK} (0 means {DEFAULT_ROWS_PER_CHUNK})",
            )
        if len(request.system_instruction) > MAX_SYSTEM_CHARS:
            raise bad_field(
                "system_instruction", f"must be at most {MAX_SYSTEM_CHARS:,} characters"
            )
        fmt = FORMAT_NAMES[request.format]
        split = split_filter(request.split)
        ds = await self._datasets.resolve(request.dataset, "dataset")
        per_chunk = request.rows_per_chunk or DEFAULT_ROWS_PER_CHUNK

        digest = hashlib.sha256()
        rows = size = 0
        after = -1
        avg_chars = max(1, int(ds.stats.get("avg_chars", 1)))
        page_rows = max(16, min(MAX_PAGE_ROWS, PAGE_CHAR_BUDGET // avg_chars))

        def next_page(after: int) -> asyncio.Future[tuple[int, list[bytes]]]:
            return asyncio.ensure_future(
                asyncio.to_thread(
                    self._render_page,
                    ds.seq,
                    split,
                    after,
                    fmt,
                    request.system_instruction,
                    page_rows,
                )
            )

        # Pages are read and rendered in a worker thread while the previous one
        # is being sent: memory stays bounded by two pages, and a client that
        # cancels or misses its deadline stops the loop at the next yield.
        page = next_page(after)
        try:
            while True:
                after, lines = await page
                if not lines:
                    break
                page = next_page(after)
                for start in range(0, len(lines), per_chunk):
                    batch = lines[start : start + per_chunk]
                    data = b"".join(batch)
                    digest.update(data)
                    rows += len(batch)
                    size += len(data)
                    for message in _chunks(data, len(batch)):
                        yield message
        finally:
            page.cancel()
        yield export_pb2.ExportDatasetResponse(
            summary=export_pb2.ExportSummary(
                row_count=rows, byte_count=size, sha256=digest.hexdigest()
            )
        )

    async def GetTrainingManifest(
        self, request: export_pb2.GetTrainingManifestRequest, context: Any
    ) -> export_pb2.GetTrainingManifestResponse:
        ds = await self._datasets.resolve(request.dataset, "dataset")
        overrides = hyperparams.parse_overrides(dict(request.hyperparameters))
        preset = request.model or hyperparams.DEFAULT_PRESET
        known = PRESETS.get(preset)
        training = hyperparams.resolve(overrides, defaults=known.hyperparameters if known else None)
        manifest = {
            "apiVersion": "tunixrt.v1",
            "kind": "TunixSftRun",
            "dataset": {
                "name": f"datasets/{ds.key}",
                "key": ds.key,
                "build_id": ds.build_id,
                "train_count": ds.stats["train_count"],
                "eval_count": ds.stats["eval_count"],
                "export": {
                    "rpc": "tunixrt.v1.ExportService/ExportDataset",
                    "format": "prompt_completion",
                    "train_split": "DATASET_SPLIT_TRAIN",
                    "eval_split": "DATASET_SPLIT_EVAL",
                },
            },
            "model": {"preset": preset},
            "training": {
                "trainer": "tunix.sft.PeftTrainer",
                "loss_mask": "completion_only",
                **training,
            },
        }
        return export_pb2.GetTrainingManifestResponse(
            yaml=yaml.safe_dump(manifest, sort_keys=False)
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
