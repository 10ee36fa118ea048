"""JSONL bytes regrouped into ImportTraces payloads of whole lines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

IMPORT_BATCH_LINES = 1_000
IMPORT_BATCH_BYTES = 1024 * 1024


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


def file_blocks(path: str | Path, size: int = IMPORT_BATCH_BYTES) -> Iterator[bytes]:
    """Blocks of a file, opened now: a missing file is FileNotFoundError here, not an
    UNKNOWN status from inside gRPC's request iterator."""
    fh = open(path, "rb")  # noqa: SIM115  (closed by the generator below)

    def blocks() -> Iterator[bytes]:
        with fh:
            while block := fh.read(size):
                yield block

    return blocks()
