"""Trace rows written straight to the traces table, for storage-level tests that
need many traces without going through ImportTraces."""

from __future__ import annotations

import uuid
from typing import Any


def bare_trace(
    n: int, prompt: str, category: str = "", meta: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A traces row with no steps and no answer, created at `n` µs."""
    return {
        "id": str(uuid.uuid4()),
        "create_time_us": n,
        "trace_version": "1.0",
        "prompt": prompt,
        "final_answer": "",
        "steps_json": "[]",
        "meta": meta or {},
        "source": "",
        "category": category,
        "step_count": 0,
        "char_count": 0,
    }
