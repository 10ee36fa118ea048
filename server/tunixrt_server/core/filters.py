"""The filter language of ListTraces, BuildDataset and ListTrainingRuns: a small
AIP-160 subset, parsed into conditions.

    source = "dev-reasoning-v2" AND meta.category = "reasoning" AND steps >= 2
    dataset = "datasets/demo-v1" AND state = "SUCCEEDED" AND labels.team = "a"

Parsing is separate from SQL: storage turns each Condition into a bound SQL
expression, so filter values never reach SQL text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import orjson

from .errors import ApiError, bad_field
from .run_state import RunState

MAX_FILTER_CHARS = 4_096
MAX_CONDITIONS = 32
OPERATORS = ("<=", ">=", "!=", "=", "<", ">")

Value = str | float | bool


@dataclass(frozen=True, slots=True)
class Condition:
    field: str  # a scalar field of the grammar, or its map ("meta", "labels")
    op: str
    value: Value
    meta_path: tuple[str, ...] = ()


@dataclass(frozen=True)
class Grammar:
    """What a filter may name: scalar fields with their value type, and one map
    (`meta.<key>...` of a trace, `labels.<key>` of a run)."""

    scalars: dict[str, type]
    map_field: str

    def describe(self) -> str:
        return f"{', '.join(self.scalars)} or {self.map_field}.<key>"


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<op><=|>=|!=|=|<|>)
      | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?![\w.])
      | (?P<word>[A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+)*)
    )""",
    re.VERBOSE,
)
TRACES = Grammar({"source": str, "category": str, "steps": float, "create_time": str}, "meta")
RUNS = Grammar({"dataset": str, "state": str, "create_time": str}, "labels")


def _error(description: str, field_name: str = "filter") -> ApiError:
    return bad_field(field_name, description, reason="INVALID_FILTER")


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise _error(f"cannot parse near {text[pos : pos + 20]!r} (character {pos + 1})")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _value(kind: str, raw: str) -> Value:
    if kind == "string":
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _error(f"bad string literal {raw}: {exc}") from None
        assert isinstance(value, str)
        return value
    if kind == "number":
        return float(raw)
    if kind == "word" and raw in ("true", "false"):
        return raw == "true"
    raise _error(f'expected a value ("string", number, true or false), got {raw!r}')


def parse_timestamp_us(text: str) -> int:
    """RFC 3339 text to integer microseconds since the epoch (UTC)."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _error(
            f'create_time needs an RFC 3339 timestamp like "2026-01-31T00:00:00Z", got {text!r}'
        ) from None
    if parsed.tzinfo is None:
        raise _error(f"create_time {text!r} needs a time zone, e.g. a trailing Z")
    return int(parsed.timestamp() * 1_000_000)


def parse_filter(text: str, grammar: Grammar = TRACES) -> list[Condition]:
    """Parse a filter string into conditions joined by AND; raise INVALID_ARGUMENT."""
    if len(text) > MAX_FILTER_CHARS:
        raise _error(f"must be at most {MAX_FILTER_CHARS:,} characters")
    tokens = _tokens(text)
    conditions: list[Condition] = []
    i = 0
    while i < len(tokens):
        if conditions:
            if tokens[i] != ("word", "AND"):
                raise _error(f"expected AND between conditions, got {tokens[i][1]!r}")
            i += 1
        if i + 3 > len(tokens):
            raise _error(
                'incomplete condition; expected FIELD OP VALUE, e.g. meta.category = "math"'
            )
        (fkind, fname), (okind, op), (vkind, vraw) = tokens[i : i + 3]
        i += 3
        if fkind != "word":
            raise _error(f"expected a field name, got {fname!r}")
        if okind != "op":
            raise _error(f"expected one of {' '.join(OPERATORS)} after {fname!r}, got {op!r}")
        value = _value(vkind, vraw)
        conditions.append(_condition(grammar, fname, op, value))
        if len(conditions) > MAX_CONDITIONS:
            raise _error(f"at most {MAX_CONDITIONS} conditions")
    return conditions


def _condition(grammar: Grammar, name: str, op: str, value: Value) -> Condition:
    if name.startswith(f"{grammar.map_field}."):
        path = tuple(name.split(".")[1:])
        if isinstance(value, bool) and op not in ("=", "!="):
            raise _error(f"{name}: true/false only compare with = or !=")
        return Condition(grammar.map_field, op, value, path)
    expected = grammar.scalars.get(name)
    if expected is None:
        raise _error(f"unknown field {name!r}; use {grammar.describe()}")
    if isinstance(value, bool) or not isinstance(value, expected):
        kind = "a number" if expected is float else 'a "string"'
        raise _error(f"{name} compares with {kind}")
    if name == "create_time":
        assert isinstance(value, str)
        return Condition(name, op, float(parse_timestamp_us(value)))
    return Condition(name, op, value)


def parse_run_filter(text: str) -> list[Condition]:
    """A ListTrainingRuns filter: `dataset` is a dataset's name or key, `state` a
    TrainingRunState name (with or without its prefix), `labels.<key>` a label."""
    conditions = []
    for cond in parse_filter(text, RUNS):
        if cond.field == "dataset":
            key = str(cond.value).removeprefix("datasets/")
            cond = Condition("dataset", cond.op, key)
        elif cond.field == "state":
            name = str(cond.value).removeprefix("TRAINING_RUN_STATE_")
            if name not in RunState.__members__:
                known = ", ".join(RunState.__members__)
                raise _error(f"unknown state {cond.value!r}; use {known}")
            if cond.op not in ("=", "!="):
                raise _error("state compares with = or !=")
            cond = Condition("state", cond.op, float(RunState[name]))
        conditions.append(cond)
    return conditions
