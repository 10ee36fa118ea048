"""ImportTraces batches parsed, validated and shaped into rows, the next one in a
helper process while the server writes this one.

The server process alone could not overlap them: parsing and validating hold the
GIL, and so does sqlite3 binding each row, so a thread gained little. In a
process of its own the parsing runs on the second core (scripts/bench_ingest.py).
A stream's first batch, and every batch of a stream with nothing being written,
is parsed in a thread as before: a one-batch import never waits on the process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, NamedTuple

from ..core.import_lines import parse_jsonl, stamped, trace_from_line
from ..core.validation import NewTrace, TraceInvalid
from ..storage.traces import new_rows
from ..training.child import die_with_parent


class ParsedBatch(NamedTuple):
    item_count: int
    rows: list[tuple[Any, ...]]  # traces rows, or none when any item is invalid
    violations: list[tuple[int, str, str]]  # (item index, field, description)


def check_items(
    items: Sequence[Any], convert: Callable[[Any], NewTrace], stamp: dict[str, str] | None = None
) -> ParsedBatch:
    """Items validated (and stamped with the import's source); rows when all are valid."""
    valid: list[NewTrace] = []
    violations: list[tuple[int, str, str]] = []
    for n, item in enumerate(items):
        try:
            trace = convert(item)
            valid.append(stamped(trace, stamp) if stamp else trace)
        except TraceInvalid as exc:
            violations.extend((n, v.field, v.description) for v in exc.violations)
    return ParsedBatch(len(items), [] if violations else new_rows(valid), violations)


def parse_batch(jsonl: bytes, max_items: int, stamp: dict[str, str] | None = None) -> ParsedBatch:
    """A JSONL batch checked; one of more than max_items lines only counted."""
    items = parse_jsonl(jsonl)
    if len(items) > max_items:
        return ParsedBatch(len(items), [], [])
    return check_items(items, trace_from_line, stamp)


def _follow_server(server_pid: int) -> None:
    """SIGTERM when the server dies, even by SIGKILL; an exit now if it died while
    this process was starting (~0.4 s), before the signal was asked for."""
    die_with_parent()
    if os.getppid() != server_pid:
        os._exit(0)


class BatchParser:
    """One helper process, started at the first batch that can overlap a write and
    used once it is up."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._started: Future[int] = Future()

    async def parse(
        self,
        jsonl: bytes,
        max_items: int,
        *,
        overlapped: bool,
        stamp: dict[str, str] | None = None,
    ) -> ParsedBatch:
        if overlapped and self._pool is None:
            self._pool = ProcessPoolExecutor(
                1,
                multiprocessing.get_context("spawn"),
                initializer=_follow_server,
                initargs=(os.getpid(),),
            )
            # Python starts in ~0.4 s; batches go on in a thread until it is up.
            self._started = self._pool.submit(int)
        if not overlapped or self._pool is None or not self._started.done():
            return await asyncio.to_thread(parse_batch, jsonl, max_items, stamp)
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._pool, parse_batch, jsonl, max_items, stamp
            )
        except BrokenProcessPool:
            # The process died (killed, out of memory): this batch in a thread, the
            # next overlapped one in a new process.
            self.close()
            return await asyncio.to_thread(parse_batch, jsonl, max_items, stamp)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
