"""ImportTraces' lines: JSONL split into documents (a line that is not JSON kept as
its error, so the batch can report it), and the import's source stamped into
each trace's meta."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import orjson

from .errors import FieldViolation
from .validation import MAX_META_BYTES, NewTrace, TraceInvalid, trace_from_json


def parse_jsonl(data: bytes) -> list[object]:
    """Split a JSONL payload into decoded documents, keeping undecodable lines as errors."""
    docs: list[object] = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            docs.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            docs.append(_BadJson(str(exc)))
    return docs


@dataclass(frozen=True, slots=True)
class _BadJson:
    error: str


def trace_from_line(doc: object) -> NewTrace:
    if isinstance(doc, _BadJson):
        raise TraceInvalid([FieldViolation("trace", f"not valid JSON: {doc.error}")])
    return trace_from_json(doc)


# ImportTraces' source stamping: these meta keys, unless a trace sets its own.
STAMP_KEYS = ("source", "ingest_source_file")
MAX_STAMP_CHARS = 256


def stamped(trace: NewTrace, stamp: dict[str, str]) -> NewTrace:
    """The trace with `stamp`'s meta keys added where it has none of its own; the
    meta's size limit holds after them (TraceInvalid otherwise)."""
    missing = {k: v for k, v in stamp.items() if v and k not in trace.meta}
    if not missing:
        return trace
    meta = {**trace.meta, **missing}
    meta_json = orjson.dumps(meta)
    if len(meta_json) > MAX_META_BYTES:
        raise TraceInvalid(
            [FieldViolation("meta", f"is over {MAX_META_BYTES:,} bytes with the import's source")]
        )
    return dataclasses.replace(trace, meta=meta, meta_json=meta_json)
