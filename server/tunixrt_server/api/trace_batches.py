"""One ImportTraces batch, or one BatchCreateTraces request, checked before it is stored:
its size, its source stamp, every item validated (in the parser's process for JSONL)."""

from __future__ import annotations

import asyncio

from tunixrt.v1 import trace_pb2

from ..core.errors import bad_field
from ..core.import_lines import MAX_STAMP_CHARS
from ..core.validation import trace_from_proto
from .batch_parser import BatchParser, ParsedBatch, check_items

MAX_BATCH_TRACES = 10_000


async def check_batch(
    parser: BatchParser,
    request: trace_pb2.ImportTracesRequest,
    field: str,
    overlapped: bool,
    stamp: dict[str, str],
) -> ParsedBatch:
    """`field` names the batch in errors: `requests[3]` in a stream, `traces` alone."""
    if request.traces and request.jsonl:
        raise bad_field(field, "set traces or jsonl, not both")
    if request.jsonl:
        batch = await parser.parse(
            request.jsonl, MAX_BATCH_TRACES, overlapped=overlapped, stamp=stamp
        )
    else:
        batch = await asyncio.to_thread(check_items, request.traces, trace_from_proto, stamp)
    if not batch.item_count:
        raise bad_field(
            field,
            "a batch needs at least one trace (traces, or jsonl with a non-blank line)",
        )
    if batch.item_count > MAX_BATCH_TRACES:
        raise bad_field(
            field,
            f"a batch holds at most {MAX_BATCH_TRACES:,} traces, got {batch.item_count:,};"
            " send more messages",
        )
    return batch


def import_stamp(
    request: trace_pb2.ImportTracesRequest, prefix: str, first: bool, stamp: dict[str, str]
) -> dict[str, str]:
    """The stream's source and file name, from its first batch; a later batch may
    repeat them, but not change them or give them for the first time. `prefix` goes
    before the fields' names in errors (`requests[3].`, or nothing in a unary call)."""
    given = {"source": request.source, "ingest_source_file": request.source_file}
    fields = {"source": "source", "ingest_source_file": "source_file"}
    for key, value in given.items():
        field = f"{prefix}{fields[key]}"
        if len(value) > MAX_STAMP_CHARS:
            raise bad_field(field, f"must be at most {MAX_STAMP_CHARS} characters")
        if value and not first and stamp.get(key) != value:
            was = repr(stamp[key]) if key in stamp else "unset (give it on the first batch)"
            raise bad_field(field, f"the stream's {fields[key]} is {was}")
    return {**stamp, **{k: v for k, v in given.items() if v}}
