"""Exports written to files: streamed to PATH.part, continued where an interrupted
export stopped, verified whole against the server's SHA-256, then renamed to PATH.

The server's summary covers the whole export even when it was asked to start
at a later row, so a resumed file is checked byte for byte like a fresh one.
An interrupted export (Ctrl-C, a lost connection, a deadline) keeps its .part
for the next call; one that can never succeed as asked (unknown dataset, bad
argument) or whose bytes do not match removes it. PATH itself is never partial.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import FailedPrecondition, InvalidArgument, NotFound, TunixRtError
from .v1 import export_pb2

if TYPE_CHECKING:
    from .stream import Stream

BLOCK = 1 << 20
# Errors after which the same request can never succeed: nothing to resume.
FINAL = (InvalidArgument, NotFound, FailedPrecondition)


def resume_point(part: Path, digest: hashlib._Hash) -> int:
    """Whole rows already in `part`, hashed into `digest`; a cut last row is removed."""
    rows = kept = 0
    carry = b""  # the row a block ends inside
    with part.open("r+b") as fh:
        while block := fh.read(BLOCK):
            data = carry + block
            end = data.rfind(b"\n") + 1
            digest.update(data[:end])
            rows += data.count(b"\n", 0, end)
            kept += end
            carry = data[end:]
        fh.truncate(kept)
    return rows


def write(
    open_stream: Callable[[int], Stream[export_pb2.ExportDatasetResponse]],
    path: str | Path,
    *,
    resume: bool = True,
    progress: bool = False,
    total_rows: int | None = None,
    label: str = "export",
) -> export_pb2.ExportSummary:
    """Stream an export into `path`; `open_stream(start_row)` starts the call."""
    path = Path(path)
    part = path.with_name(path.name + ".part")
    digest = hashlib.sha256()
    start_row = resume_point(part, digest) if resume and part.exists() else 0
    summary: export_pb2.ExportSummary | None = None
    rows = start_row
    try:
        with (
            open_stream(start_row) as stream,
            _progress(progress, total_rows, label, start_row) as advance,
            part.open("ab" if start_row else "wb") as out,
        ):
            for message in stream:
                if message.HasField("summary"):
                    summary = message.summary
                    break
                digest.update(message.chunk.data)
                out.write(message.chunk.data)
                rows += message.chunk.row_count
                advance(message.chunk.row_count)
    except FINAL:
        part.unlink(missing_ok=True)
        raise
    if summary is None:
        raise TunixRtError(f"export stream ended without a summary; {part} is kept to resume")
    if digest.hexdigest() != summary.sha256:
        part.unlink(missing_ok=True)
        raise TunixRtError(
            f"checksum mismatch: the file hashes to {digest.hexdigest()}, the server's export to "
            f"{summary.sha256} (a .part from another export?); removed it, export again"
        )
    # A server before expected_row_count sends 0 there for every export.
    expected = summary.expected_row_count or summary.row_count
    if not rows == summary.row_count == expected:
        part.unlink(missing_ok=True)
        raise TunixRtError(
            f"incomplete export: {rows:,} rows received, the summary counts "
            f"{summary.row_count:,} of the {expected:,} expected; removed it, export again"
        )
    part.replace(path)
    return summary


@contextmanager
def _progress(
    enabled: bool, total: int | None, label: str, done: int
) -> Iterator[Callable[[int], None]]:
    try:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )
    except ImportError:  # no [monitor] extra: no bar
        enabled = False
    if not enabled:
        yield lambda _n: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(label, total=total, completed=done)
        yield lambda n: bar.advance(task, n)
