"""Training hyperparameter defaults and checks, shared by manifests and training runs."""

from __future__ import annotations

import math
from typing import Any

from .errors import FieldViolation, invalid_argument

DEFAULT_PRESET = "tiny-gemma3"

# name: (default, minimum, maximum)
LIMITS: dict[str, tuple[Any, Any, Any]] = {
    "max_steps": (200, 1, 1_000_000),
    "batch_size": (8, 1, 4_096),
    "max_seq_len": (256, 16, 32_768),
    "learning_rate": (1e-2, 1e-8, 10.0),
    "warmup_steps": (10, 0, 1_000_000),
    "eval_every_steps": (25, -1, 1_000_000),
    "checkpoint_every_steps": (50, 1, 1_000_000),
    "seed": (0, -(2**62), 2**62),
    "weight_decay": (0.0, 0.0, 10.0),
}


def resolve(
    given: dict[str, Any],
    prefix: str = "hyperparameters",
    defaults: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fill zero/absent values with defaults (a model preset's first) and range-check."""
    out: dict[str, Any] = {}
    bad: list[FieldViolation] = []
    for name, (default, low, high) in LIMITS.items():
        value = given.get(name) or (defaults or {}).get(name) or default
        if isinstance(value, float) and not math.isfinite(value):
            bad.append(FieldViolation(f"{prefix}.{name}", "must be a finite number"))
        elif not low <= value <= high:
            bad.append(
                FieldViolation(f"{prefix}.{name}", f"must be in [{low}, {high}], got {value}")
            )
        out[name] = value
    if bad:
        raise invalid_argument(bad, reason="INVALID_HYPERPARAMETERS")
    return out


def parse_overrides(raw: dict[str, str], prefix: str = "hyperparameters") -> dict[str, Any]:
    """String overrides (from a map<string,string>) to typed values."""
    parsed: dict[str, Any] = {}
    bad: list[FieldViolation] = []
    for name, text in raw.items():
        if name not in LIMITS:
            bad.append(
                FieldViolation(
                    f"{prefix}[{name}]", f"unknown hyperparameter; known: {', '.join(LIMITS)}"
                )
            )
            continue
        kind = type(LIMITS[name][0])
        try:
            parsed[name] = (
                kind(float(text)) if kind is int and float(text).is_integer() else kind(text)
            )
        except ValueError:
            bad.append(FieldViolation(f"{prefix}[{name}]", f"{text!r} is not a {kind.__name__}"))
    if bad:
        raise invalid_argument(bad, reason="INVALID_HYPERPARAMETERS")
    return parsed
