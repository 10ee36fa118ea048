"""Exact-match scoring of generated answers (pure Python; the worker only generates)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_SPACE = re.compile(r"\s+")
SAMPLES_KEPT = 10


ANSWER = "Answer:"


def extract_answer(text: str) -> str:
    """The rest of the line after the first "Answer:", trimmed ("" if absent)."""
    _, found, rest = text.partition(ANSWER)
    return rest.split("\n", 1)[0].strip() if found else ""


def unfinished(text: str) -> bool:
    """No answer at all: the output ran out of tokens (or stopped) before "Answer:".
    Counted apart from wrong answers, so a budget that is too small shows as such."""
    return ANSWER not in text


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
    correct_total = unfinished_total = 0
    for example, output in zip(examples, outputs, strict=True):
        predicted = extract_answer(output)
        correct = normalize(predicted) == normalize(example.expected)
        cut = unfinished(output)
        correct_total += correct
        unfinished_total += cut
        bucket = per_category.setdefault(
            example.category or "(none)",
            {"example_count": 0, "correct_count": 0, "unfinished_count": 0},
        )
        bucket["example_count"] += 1
        bucket["correct_count"] += correct
        bucket["unfinished_count"] += cut
        if len(samples) < SAMPLES_KEPT:
            samples.append(
                {
                    "prompt": example.prompt,
                    "expected_answer": example.expected,
                    "predicted_answer": predicted,
                    "output": output,
                    "correct": correct,
                    "unfinished": cut,
                }
            )
    for bucket in per_category.values():
        bucket["accuracy"] = bucket["correct_count"] / bucket["example_count"]
    n = len(examples)
    return {
        "example_count": n,
        "correct_count": correct_total,
        "unfinished_count": unfinished_total,
        "accuracy": correct_total / n if n else 0.0,
        "per_category": per_category,
        "samples": samples,
    }


def category_mean(result: dict[str, Any]) -> float:
    """The mean of a score()'s per-category exact match: what chooses the best
    checkpoint during training, so a hard category's noise cannot outvote an easy one."""
    per = result["per_category"]
    return sum(c["accuracy"] for c in per.values()) / len(per) if per else 0.0
