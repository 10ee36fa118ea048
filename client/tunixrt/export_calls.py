"""Client's ExportService methods (a mixin: Client holds the channel and stubs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from . import exports
from .convert import dataset_split, export_format
from .stream import Stream
from .v1 import dataset_pb2, export_pb2, export_pb2_grpc

T = TypeVar("T")


class ExportCalls:
    exports: export_pb2_grpc.ExportServiceStub
    _metadata: tuple[tuple[str, str], ...]

    if TYPE_CHECKING:  # provided by Client

        def _call(
            self, method: Callable[..., T], request: Any, timeout: float | None = None
        ) -> T: ...

        def get_dataset(self, name: str, *, full: bool = False) -> dataset_pb2.Dataset: ...

    def export_chunks(
        self,
        dataset: str,
        *,
        format: str = "trace",
        split: str = "ALL",
        system_instruction: str = "",
        rows_per_chunk: int = 0,
        start_row: int = 0,
        timeout: float | None = None,
    ) -> Stream[export_pb2.ExportDatasetResponse]:
        """The raw ExportDataset stream; closing it early cancels the call."""
        request = export_pb2.ExportDatasetRequest(
            dataset=dataset,
            format=export_format(format),
            split=dataset_split(split),
            system_instruction=system_instruction,
            rows_per_chunk=rows_per_chunk,
            start_row=start_row,
        )
        return Stream(self.exports.ExportDataset(request, timeout=timeout, metadata=self._metadata))

    def export_traces(
        self,
        names: list[str] | None = None,
        *,
        filter: str = "",
        limit: int = 0,
        format: str = "trace",
        system_instruction: str = "",
        rows_per_chunk: int = 0,
        start_row: int = 0,
        timeout: float | None = None,
    ) -> Stream[export_pb2.ExportDatasetResponse]:
        """The ExportTraces stream: listed traces in the order given (at most 10,000),
        or the newest `limit` that match `filter`."""
        request = export_pb2.ExportTracesRequest(
            names=names or [],
            filter=filter,
            limit=limit,
            format=export_format(format),
            system_instruction=system_instruction,
            rows_per_chunk=rows_per_chunk,
            start_row=start_row,
        )
        return Stream(self.exports.ExportTraces(request, timeout=timeout, metadata=self._metadata))

    def export_to_file(
        self,
        dataset: str,
        path: str | Path,
        *,
        format: str = "trace",
        split: str = "ALL",
        system_instruction: str = "",
        progress: bool = False,
        resume: bool = True,
        timeout: float | None = None,
    ) -> export_pb2.ExportSummary:
        """Write a dataset's export to a .jsonl file and verify its SHA-256; returns the
        summary. It goes to `path + ".part"` first and is renamed only once the whole
        file matches; an interrupted export keeps its .part, and the next call (with
        `resume`) continues it from its last whole row."""
        total = _split_rows(self.get_dataset(dataset), split) if progress else None
        return exports.write(
            lambda start_row: self.export_chunks(
                dataset,
                format=format,
                split=split,
                system_instruction=system_instruction,
                start_row=start_row,
                timeout=timeout,
            ),
            path,
            resume=resume,
            progress=progress,
            total_rows=total,
            label=f"export {format}",
        )

    def export_traces_to_file(
        self,
        names: list[str] | None,
        path: str | Path,
        *,
        filter: str = "",
        limit: int = 0,
        format: str = "trace",
        system_instruction: str = "",
        progress: bool = False,
        resume: bool = True,
        timeout: float | None = None,
    ) -> export_pb2.ExportSummary:
        """export_to_file for listed traces (ExportTraces), rows in the order given, or
        for the newest `limit` that match `filter`."""
        return exports.write(
            lambda start_row: self.export_traces(
                names,
                filter=filter,
                limit=limit,
                format=format,
                system_instruction=system_instruction,
                start_row=start_row,
                timeout=timeout,
            ),
            path,
            resume=resume,
            progress=progress,
            total_rows=len(names) if names else None,
            label=f"export {format}",
        )

    def get_training_manifest(
        self,
        dataset: str,
        *,
        model: str = "",
        hyperparameters: dict[str, str] | None = None,
        style: str = "TUNIXRT_V1",
    ) -> str:
        """The manifest YAML; `style="TUNIX_RT"` writes the tunix-rt project's shape."""
        request = export_pb2.GetTrainingManifestRequest(
            dataset=dataset,
            model=model,
            hyperparameters=hyperparameters or {},
            style=export_pb2.ManifestStyle.Value(f"MANIFEST_STYLE_{style.upper()}"),
        )
        return self._call(self.exports.GetTrainingManifest, request).yaml


def _split_rows(ds: dataset_pb2.Dataset, split: str) -> int:
    return {"TRAIN": ds.stats.train_count, "EVAL": ds.stats.eval_count}.get(
        split.upper(), ds.stats.trace_count
    )
