"""Trace generation on the server: the same deterministic generators as the SDK's
`tunixrt.generators` (which the CLI runs on the client), checked and turned into
validated traces, ready to store as ImportTraces stores them."""

from __future__ import annotations

from collections.abc import Mapping

from tunixrt import generators

from .errors import FieldViolation, bad_field, invalid_argument
from .validation import NewTrace, TraceInvalid, trace_from_json

MAX_COUNT = 10_000
# A FULL view carries each trace's text: ~1 KB each, within a 4 MiB response.
MAX_FULL_VIEW = 1_000


def check(name: str, count: int, options: Mapping[str, str]) -> dict[str, str]:
    """The request's generator and options, or INVALID_ARGUMENT naming the field."""
    if name not in generators.GENERATORS:
        raise bad_field(
            "generator", f"unknown generator {name!r}; known: {', '.join(generators.GENERATORS)}"
        )
    if not 1 <= count <= MAX_COUNT:
        raise bad_field("count", f"must be in [1, {MAX_COUNT:,}], got {count}")
    parameters = {p.name: p for p in generators.PARAMETERS[name]}
    bad = []
    for key, value in options.items():
        parameter = parameters.get(key)
        if parameter is None:
            known = ", ".join(parameters) or "none"
            bad.append(
                FieldViolation(f"options[{key}]", f"{name} takes no {key!r}; it takes {known}")
            )
        elif value and parameter.choices and value not in parameter.choices:
            choices = ", ".join(parameter.choices)
            bad.append(FieldViolation(f"options[{key}]", f"{value!r} is not one of {choices}"))
    if bad:
        raise invalid_argument(bad)
    return {key: value for key, value in options.items() if value}


def generate(name: str, count: int, seed: int, options: Mapping[str, str]) -> list[NewTrace]:
    """`count` traces, validated by the rules every stored trace meets."""
    traces = []
    for n, doc in enumerate(generators.generate(name, count, seed, **options)):
        try:
            traces.append(trace_from_json(doc))
        except TraceInvalid as exc:  # a generator bug, not the caller's: say where
            raise RuntimeError(f"generator {name} made an invalid trace {n}: {exc}") from None
    return traces
