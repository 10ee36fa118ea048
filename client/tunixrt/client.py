"""The typed Python SDK: one object per server, plain methods per RPC."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc

from .errors import TunixRtError, from_rpc_error
from .v1 import trace_pb2, trace_pb2_grpc

T = TypeVar("T")

DEFAULT_ADDRESS = "127.0.0.1:50051"
IMPORT_BATCH_LINES = 1_000
IMPORT_BATCH_BYTES = 1024 * 1024
# Room for a full-size trace (1,000 steps x 20,000 chars) in either direction.
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def _channel_options() -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
    ]


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
    with open(path, "rb") as fh:
        while block := fh.read(size):
            yield block


class Client:
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
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        if tls or root_certificates:
            creds = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self.channel = grpc.secure_channel(address, creds, options=_channel_options())
        else:
            self.channel = grpc.insecure_channel(address, options=_channel_options())
        self.traces = trace_pb2_grpc.TraceServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: Callable[..., T], request: Any, timeout: float | None = None) -> T:
        try:
            return method(request, timeout=timeout or self.timeout, metadata=self._metadata)
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

    def get_trace(self, name: str) -> trace_pb2.Trace:
        return self._call(self.traces.GetTrace, trace_pb2.GetTraceRequest(name=name))

    def list_traces(self, filter: str = "", *, page_size: int = 0) -> Iterator[trace_pb2.Trace]:
        """Every matching trace, newest first, fetched page by page."""

        def fetch(token: str) -> tuple[list[trace_pb2.Trace], str]:
            page = self._call(
                self.traces.ListTraces,
                trace_pb2.ListTracesRequest(filter=filter, page_size=page_size, page_token=token),
            )
            return list(page.traces), page.next_page_token

        return self._pages(fetch)

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
        self, source: str | Path | Iterable[bytes], *, batch_lines: int = IMPORT_BATCH_LINES
    ) -> trace_pb2.ImportTracesResponse:
        """Import a JSONL file (or an iterable of lines) as it is; the server parses and validates.

        Each batch of `batch_lines` lines (or 1 MiB) is stored all-or-nothing."""
        blocks = (
            _file_blocks(source)
            if isinstance(source, str | Path)
            else (line if line.endswith(b"\n") else line + b"\n" for line in source)
        )
        return self.import_traces(
            trace_pb2.ImportTracesRequest(jsonl=payload)
            for payload in jsonl_batches(blocks, batch_lines)
        )


__all__ = ["Client", "TunixRtError"]
