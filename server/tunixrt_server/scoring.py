"""Exact-match scoring of generated answers (pure Python; the worker only generates)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_SPACE = re.compile(r"\s+")
SAMPLES_KEPT = 10


def extract_answer(text: str) -> str:
    """The rest of the line after the first "Answer:", trimmed ("" if absent)."""
    _, found, rest = text.partition("Answer:")
    return rest.split("\n", 1)[0].strip() if found else ""


def normalize(answer: str) -> str:
    """Case, runs of spaces and a final period do not count against a match."""
    return _SPACE.sub(" ", answer).strip().rstrip(".").casefold()


@dataclass(frozen=True)
class Example:
    prompt: str
    expected: str
    category: str


def score(examples: Sequence[Example], outputs: Sequence[str]) -> dict[str, Any]:
    """An Evaluation message's fields (without split, step and create_time)."""
    per_category: dict[str, dict[str, Any]] = {}
    samples: list[dict[str, Any]] = []
    correct_total = 0
    for example, output in zip(examples, outputs, strict=True):
        predicted = extract_answer(output)
        correct = normalize(predicted) == normalize(example.expected)
        correct_total += correct
        bucket = per_category.setdefault(
            example.category or "(none)", {"example_count": 0, "correct_count": 0}
        )
        bucket["example_count"] += 1
        bucket["correct_count"] += correct
        if len(samples) < SAMPLES_KEPT:
            samples.append(
                {
                    "prompt": example.prompt,
                    "expected_answer": example.expected,
                    "predicted_answer": predicted,
                    "output": output,
                    "correct": correct,
                }
            )
    for bucket in per_category.values():
        bucket["accuracy"] = bucket["correct_count"] / bucket["example_count"]
    n = len(examples)
    return {
        "example_count": n,
        "correct_count": correct_total,
        "accuracy": correct_total / n if n else 0.0,
        "per_category": per_category,
        "samples": samples,
    }
