"""Trace validation: the limits of docs/contract.md, for JSON lines and typed protos alike.

Both paths normalise to NewTrace, so the rules live in one place and a trace
stored from JSONL is byte-for-byte what the same trace sent as a proto stores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf import json_format

from tunixrt.v1 import trace_pb2

from .errors import FieldViolation
from .nul_check import NUL, RULE, json_paths

MAX_TEXT_CHARS = 50_000
MAX_STEPS = 1_000
MAX_STEP_TYPE_CHARS = 64
MAX_STEP_CONTENT_CHARS = 20_000
MAX_META_BYTES = 64 * 1024
MAX_VERSION_CHARS = 16
DEFAULT_TRACE_VERSION = "1.0"

_TOP_LEVEL_KEYS = {"trace_version", "prompt", "final_answer", "steps", "meta"}
# Server-assigned fields an exported `trace` row carries; ignored on re-import.
_IGNORED_KEYS = {"id", "name", "create_time"}
_STEP_KEYS = {"i", "type", "content"}


@dataclass(frozen=True, slots=True)
class NewTrace:
    """A validated trace, ready to store."""

    trace_version: str
    prompt: str
    final_answer: str
    steps: list[dict[str, Any]]
    meta: dict[str, Any]
    meta_json: bytes  # serialised once, when its size is checked

    @property
    def source(self) -> str:
        return _meta_str(self.meta, "source") or _meta_str(self.meta, "dataset")

    @property
    def category(self) -> str:
        return _meta_str(self.meta, "category")

    @property
    def char_count(self) -> int:
        return (
            len(self.prompt) + len(self.final_answer) + sum(len(s["content"]) for s in self.steps)
        )


class TraceInvalid(Exception):
    def __init__(self, violations: list[FieldViolation]) -> None:
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in violations))
        self.violations = violations


def _meta_str(meta: dict[str, Any], key: str) -> str:
    value = meta.get(key)
    return value[:256] if isinstance(value, str) else ""


def _type_name(value: object) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _check_text(
    out: list[FieldViolation], field: str, value: object, max_chars: int, *, required: bool = True
) -> str:
    if value is None:
        if required:
            out.append(FieldViolation(field, "is required"))
        return ""
    if not isinstance(value, str):
        out.append(FieldViolation(field, f"must be a string, got {_type_name(value)}"))
        return ""
    if not 1 <= len(value) <= max_chars:
        out.append(
            FieldViolation(field, f"must be 1..{max_chars:,} characters, got {len(value):,}")
        )
    if NUL in value:
        out.append(FieldViolation(field, RULE))
    return value


def _check_steps(out: list[FieldViolation], raw: object) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        out.append(FieldViolation("steps", f"must be an array, got {_type_name(raw)}"))
        return []
    if len(raw) > MAX_STEPS:
        out.append(
            FieldViolation("steps", f"must have at most {MAX_STEPS:,} steps, got {len(raw):,}")
        )
        return []
    steps: list[dict[str, Any]] = []
    seen: dict[int, int] = {}
    for n, step in enumerate(raw):
        where = f"steps[{n}]"
        if not isinstance(step, dict):
            out.append(FieldViolation(where, f"must be an object, got {_type_name(step)}"))
            continue
        for key in step.keys() - _STEP_KEYS:
            out.append(
                FieldViolation(f"{where}.{key}", "unknown field (expected i, type, content)")
            )
        i = step.get("i")
        if i is None:
            out.append(FieldViolation(f"{where}.i", "is required"))
        elif isinstance(i, bool) or not isinstance(i, int):
            out.append(FieldViolation(f"{where}.i", f"must be an integer, got {_type_name(i)}"))
        elif not 0 <= i < 2**31:
            out.append(FieldViolation(f"{where}.i", f"must be >= 0 (and < 2^31), got {i}"))
        elif i in seen:
            out.append(
                FieldViolation(f"{where}.i", f"duplicate step index {i} (also steps[{seen[i]}])")
            )
        else:
            seen[i] = n
        step_type = _check_text(out, f"{where}.type", step.get("type"), MAX_STEP_TYPE_CHARS)
        content = _check_text(out, f"{where}.content", step.get("content"), MAX_STEP_CONTENT_CHARS)
        steps.append({"i": i, "type": step_type, "content": content})
    return steps


def _check_meta(out: list[FieldViolation], raw: object) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        out.append(FieldViolation("meta", f"must be an object, got {_type_name(raw)}"))
        return {}
    encoded = orjson.dumps(raw)
    if len(encoded) > MAX_META_BYTES:
        out.append(
            FieldViolation(
                "meta", f"must be at most {MAX_META_BYTES:,} bytes of JSON, got {len(encoded):,}"
            )
        )
    if _ESCAPED_NUL in encoded:
        out += [FieldViolation(path, RULE) for path in json_paths(raw, "meta")]
    return raw


# How JSON writes U+0000; no JSON text holds a raw NUL byte.
_ESCAPED_NUL = b"\\u0000"


def _is_text(value: object, max_chars: int) -> bool:
    return type(value) is str and 0 < len(value) <= max_chars and NUL not in value


def _clean_steps(steps: object) -> bool:
    if steps is None:
        return True
    if type(steps) is not list or len(steps) > MAX_STEPS:
        return False
    seen = set()
    for step in steps:
        if type(step) is not dict or len(step) != 3:
            return False
        i = step.get("i")
        if (
            type(i) is not int
            or not 0 <= i < 2**31
            or i in seen
            or not _is_text(step.get("type"), MAX_STEP_TYPE_CHARS)
            or not _is_text(step.get("content"), MAX_STEP_CONTENT_CHARS)
        ):
            return False
        seen.add(i)
    return True


def _fast_trace(doc: object) -> NewTrace | None:
    """The same rules as trace_from_json as one predicate: valid input (the
    bulk-ingest case) pays for no error bookkeeping. None means "explain it"."""
    if type(doc) is not dict or not doc.keys() <= _TOP_LEVEL_KEYS:
        return None
    version = doc.get("trace_version", DEFAULT_TRACE_VERSION)
    prompt, answer, steps = doc.get("prompt"), doc.get("final_answer"), doc.get("steps")
    meta = doc.get("meta")
    if not (
        _is_text(version, MAX_VERSION_CHARS)
        and _is_text(prompt, MAX_TEXT_CHARS)
        and _is_text(answer, MAX_TEXT_CHARS)
        and (meta is None or type(meta) is dict)
        and _clean_steps(steps)
    ):
        return None
    meta = meta or {}
    meta_json = orjson.dumps(meta)
    if len(meta_json) > MAX_META_BYTES or _ESCAPED_NUL in meta_json:
        return None
    return NewTrace(version, prompt, answer, steps or [], meta, meta_json)  # type: ignore[arg-type]


def trace_from_json(doc: object) -> NewTrace:
    """Validate one decoded JSON trace; raise TraceInvalid listing every violation."""
    fast = _fast_trace(doc)
    if fast is not None:
        return fast
    out: list[FieldViolation] = []
    if not isinstance(doc, dict):
        raise TraceInvalid(
            [FieldViolation("trace", f"must be a JSON object, got {_type_name(doc)}")]
        )
    for key in sorted(doc.keys() - _TOP_LEVEL_KEYS - _IGNORED_KEYS):
        out.append(
            FieldViolation(
                key, "unknown field (expected trace_version, prompt, final_answer, steps, meta)"
            )
        )
    version = doc.get("trace_version")
    if version is None:
        version = DEFAULT_TRACE_VERSION
    version = _check_text(out, "trace_version", version, MAX_VERSION_CHARS)
    prompt = _check_text(out, "prompt", doc.get("prompt"), MAX_TEXT_CHARS)
    answer = _check_text(out, "final_answer", doc.get("final_answer"), MAX_TEXT_CHARS)
    steps = _check_steps(out, doc.get("steps"))
    meta = _check_meta(out, doc.get("meta"))
    if out:
        raise TraceInvalid(out)
    return NewTrace(version, prompt, answer, steps, meta, orjson.dumps(meta))


def trace_from_proto(msg: trace_pb2.Trace) -> NewTrace:
    """Validate a typed trace with the same rules and field names as JSON."""
    try:
        # Struct carries numbers as doubles; the caller's JSON almost always had ints.
        meta = (
            whole_numbers_as_int(json_format.MessageToDict(msg.meta))
            if msg.HasField("meta")
            else {}
        )
    except ValueError:  # NaN or Infinity in a Struct: JSON cannot hold them
        raise TraceInvalid(
            [FieldViolation("meta", "numbers must be finite (JSON has no NaN or Infinity)")]
        ) from None
    doc: dict[str, Any] = {
        "trace_version": msg.trace_version or DEFAULT_TRACE_VERSION,
        "prompt": msg.prompt if msg.prompt else None,
        "final_answer": msg.final_answer if msg.final_answer else None,
        "steps": [
            {"i": s.i, "type": s.type or None, "content": s.content or None} for s in msg.steps
        ],
        "meta": meta,
    }
    return trace_from_json(doc)


def whole_numbers_as_int(value: Any) -> Any:
    """Struct carries numbers as doubles; give back ints where the JSON had them.
    (tunixrt.convert has the same for SDK users: the server imports only the stubs.)"""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers_as_int(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers_as_int(v) for v in value]
    return value
