"""The typed Python SDK: one object per server, plain methods per RPC."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc

from . import exports, retry
from .convert import dataset_split, export_format, trace_view
from .errors import TunixRtError, from_rpc_error
from .stream import Stream
from .training_calls import TrainingCalls
from .v1 import (
    dataset_pb2,
    dataset_pb2_grpc,
    export_pb2,
    export_pb2_grpc,
    server_pb2,
    server_pb2_grpc,
    trace_pb2,
    trace_pb2_grpc,
    training_pb2_grpc,
)

T = TypeVar("T")


DEFAULT_ADDRESS = "127.0.0.1:50051"
IMPORT_BATCH_LINES = 1_000
IMPORT_BATCH_BYTES = 1024 * 1024
# Room for a full-size trace (1,000 steps x 20,000 chars) in either direction.
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def channel_options() -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
        ("grpc.enable_retries", 1),
        ("grpc.service_config", retry.service_config()),
    ]


def auth_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


def credentials(tls: bool, root_certificates: bytes | None) -> grpc.ChannelCredentials | None:
    """TLS credentials when asked for (or when a CA is given); None for plaintext."""
    if tls or root_certificates:
        return grpc.ssl_channel_credentials(root_certificates=root_certificates)
    return None


def _cut(buf: bytes, max_lines: int, max_bytes: int) -> int | None:
    """End of the first payload in buf: max_lines lines or ~max_bytes, whichever is first."""
    if buf.count(b"\n", 0, max_bytes) >= max_lines:
        pos = -1
        for _ in range(max_lines):
            pos = buf.index(b"\n", pos + 1)
        return pos + 1
    if len(buf) >= max_bytes:
        pos = buf.rfind(b"\n", 0, max_bytes)
        if pos == -1:  # one line longer than max_bytes travels alone
            pos = buf.find(b"\n")
        return pos + 1 if pos != -1 else None
    return None


def jsonl_batches(
    blocks: Iterable[bytes],
    batch_lines: int = IMPORT_BATCH_LINES,
    max_bytes: int = IMPORT_BATCH_BYTES,
) -> Iterator[bytes]:
    """Regroup JSONL bytes (arbitrary blocks) into payloads of whole lines."""
    parts: list[bytes] = []
    size = lines = 0
    for block in blocks:
        parts.append(block)
        size += len(block)
        lines += block.count(b"\n")
        if lines < batch_lines and size < max_bytes:
            continue
        buf = b"".join(parts)
        while (cut := _cut(buf, batch_lines, max_bytes)) is not None:
            payload, buf = buf[:cut], buf[cut:]
            if payload.strip():
                yield payload
        parts, size, lines = [buf], len(buf), buf.count(b"\n")
    rest = b"".join(parts)
    if rest.strip():
        yield rest


def _file_blocks(path: str | Path, size: int = IMPORT_BATCH_BYTES) -> Iterator[bytes]:
    """Blocks of a file, opened now: a missing file is FileNotFoundError here, not an
    UNKNOWN status from inside gRPC's request iterator."""
    fh = open(path, "rb")  # noqa: SIM115  (closed by the generator below)

    def blocks() -> Iterator[bytes]:
        with fh:
            while block := fh.read(size):
                yield block

    return blocks()


class Client(TrainingCalls):
    """A connection to a tunix-rt server.

    >>> with Client("127.0.0.1:50051") as rt:
    ...     rt.import_jsonl("traces.jsonl")
    """

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
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
        if creds:
            self.channel = grpc.secure_channel(address, creds, options=channel_options())
        else:
            self.channel = grpc.insecure_channel(address, options=channel_options())
        self.traces = trace_pb2_grpc.TraceServiceStub(self.channel)
        self.datasets = dataset_pb2_grpc.DatasetServiceStub(self.channel)
        self.exports = export_pb2_grpc.ExportServiceStub(self.channel)
        self.training = training_pb2_grpc.TrainingServiceStub(self.channel)
        self.server = server_pb2_grpc.ServerServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: Callable[..., T], request: Any, timeout: float | None = None) -> T:
        try:
            return retry.call(
                lambda left: method(request, timeout=left, metadata=self._metadata),
                request,
                timeout or self.timeout,
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    def _pages(self, fetch: Callable[[str], tuple[list[T], str]]) -> Iterator[T]:
        token = ""
        while True:
            items, token = fetch(token)
            yield from items
            if not token:
                return

    # -- traces -------------------------------------------------------------

    def create_trace(self, trace: trace_pb2.Trace, *, request_id: str = "") -> trace_pb2.Trace:
        return self._call(
            self.traces.CreateTrace,
            trace_pb2.CreateTraceRequest(trace=trace, request_id=request_id),
        )

    def get_trace(self, name: str, *, view: str = "FULL") -> trace_pb2.Trace:
        """`view="BASIC"`: name, trace_version, meta, create_time and step_count only."""
        request = trace_pb2.GetTraceRequest(name=name, view=trace_view(view))
        return self._call(self.traces.GetTrace, request)

    def list_traces(
        self, filter: str = "", *, page_size: int = 0, view: str = "FULL"
    ) -> Iterator[trace_pb2.Trace]:
        """Every matching trace, newest first, fetched page by page; `view="BASIC"`
        leaves out prompts, answers and steps."""

        def fetch(token: str) -> tuple[list[trace_pb2.Trace], str]:
            page = self._call(
                self.traces.ListTraces,
                trace_pb2.ListTracesRequest(
                    filter=filter, page_size=page_size, page_token=token, view=trace_view(view)
                ),
            )
            return list(page.traces), page.next_page_token

        return self._pages(fetch)

    def generate_traces(
        self,
        generator: str,
        count: int,
        *,
        seed: int = 0,
        options: dict[str, str] | None = None,
        persist: bool = False,
        view: str = "FULL",
    ) -> trace_pb2.GenerateTracesResponse:
        """Traces generated by the server (the same as tunixrt.generators makes here);
        `persist` stores them, all or none, and names them."""
        request = trace_pb2.GenerateTracesRequest(
            generator=generator,
            count=count,
            seed=seed,
            options=options or {},
            persist=persist,
            view=trace_view(view),
        )
        return self._call(self.traces.GenerateTraces, request)

    def list_generators(self) -> list[trace_pb2.TraceGenerator]:
        response = self._call(self.traces.ListGenerators, trace_pb2.ListGeneratorsRequest())
        return list(response.generators)

    def delete_trace(self, name: str) -> None:
        self._call(self.traces.DeleteTrace, trace_pb2.DeleteTraceRequest(name=name))

    def import_traces(
        self, batches: Iterable[trace_pb2.ImportTracesRequest], *, timeout: float | None = None
    ) -> trace_pb2.ImportTracesResponse:
        """Stream batches through ImportTraces (each batch all-or-nothing)."""
        try:
            return self.traces.ImportTraces(
                iter(batches), timeout=timeout or max(self.timeout, 3600.0), metadata=self._metadata
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    def import_jsonl(
        self,
        source: str | Path | Iterable[bytes],
        *,
        batch_lines: int = IMPORT_BATCH_LINES,
        source_name: str = "",
        source_file: str = "",
    ) -> trace_pb2.ImportTracesResponse:
        """Import a JSONL file (or an iterable of lines) as it is; the server parses and validates.

        Each batch of `batch_lines` lines (or 1 MiB) is stored all-or-nothing.
        `source_name` and `source_file` are stamped into meta.source and
        meta.ingest_source_file of every trace that has none of its own."""
        blocks = (
            _file_blocks(source)
            if isinstance(source, str | Path)
            else (line if line.endswith(b"\n") else line + b"\n" for line in source)
        )
        return self.import_traces(
            trace_pb2.ImportTracesRequest(
                jsonl=payload,
                source=source_name if n == 0 else "",
                source_file=source_file if n == 0 else "",
            )
            for n, payload in enumerate(jsonl_batches(blocks, batch_lines))
        )

    # -- datasets -----------------------------------------------------------

    def build_dataset(
        self,
        dataset_name: str,
        version: str,
        *,
        filter: str = "",
        limit: int = 0,
        strategy: str = "LATEST",
        seed: int = 0,
        stratify_by: str = "",
        eval_fraction: float = 0.0,
        provenance: dataset_pb2.Provenance | None = None,
    ) -> dataset_pb2.Dataset:
        request = dataset_pb2.BuildDatasetRequest(
            dataset_name=dataset_name,
            version=version,
            filter=filter,
            limit=limit,
            strategy=dataset_pb2.SelectionStrategy.Value(f"SELECTION_STRATEGY_{strategy.upper()}"),
            seed=seed,
            stratify_by=stratify_by,
            eval_fraction=eval_fraction,
            provenance=provenance,
        )
        return self._call(self.datasets.BuildDataset, request, timeout=max(self.timeout, 600.0))

    def get_dataset(self, name: str, *, full: bool = False) -> dataset_pb2.Dataset:
        view = dataset_pb2.DATASET_VIEW_FULL if full else dataset_pb2.DATASET_VIEW_BASIC
        return self._call(
            self.datasets.GetDataset, dataset_pb2.GetDatasetRequest(name=name, view=view)
        )

    def list_datasets(self, *, page_size: int = 0) -> Iterator[dataset_pb2.Dataset]:
        def fetch(token: str) -> tuple[list[dataset_pb2.Dataset], str]:
            page = self._call(
                self.datasets.ListDatasets,
                dataset_pb2.ListDatasetsRequest(page_size=page_size, page_token=token),
            )
            return list(page.datasets), page.next_page_token

        return self._pages(fetch)

    def list_dataset_items(
        self, name: str, *, split: str = "ALL", page_size: int = 0
    ) -> Iterator[dataset_pb2.DatasetItem]:
        def fetch(token: str) -> tuple[list[dataset_pb2.DatasetItem], str]:
            page = self._call(
                self.datasets.ListDatasetItems,
                dataset_pb2.ListDatasetItemsRequest(
                    parent=name, split=dataset_split(split), page_size=page_size, page_token=token
                ),
            )
            return list(page.items), page.next_page_token

        return self._pages(fetch)

    def delete_dataset(self, name: str) -> None:
        self._call(self.datasets.DeleteDataset, dataset_pb2.DeleteDatasetRequest(name=name))

    # -- export -------------------------------------------------------------

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

    # -- the server -----------------------------------------------------------

    def get_server_info(self) -> server_pb2.ServerInfo:
        """Versions, the devices a training worker uses, presets, limits, auth."""
        return self._call(self.server.GetServerInfo, server_pb2.GetServerInfoRequest())


def _split_rows(ds: dataset_pb2.Dataset, split: str) -> int:
    return {"TRAIN": ds.stats.train_count, "EVAL": ds.stats.eval_count}.get(
        split.upper(), ds.stats.trace_count
    )


__all__ = ["Client", "TunixRtError"]
