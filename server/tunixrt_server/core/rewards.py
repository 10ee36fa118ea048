"""The reward functions a GRPO run may name: the server's registry, never client
code. Each scores one completion against its trace's final_answer, in [0, 1];
a run sums them with its weights (GrpoConfig.rewards)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .scoring import ANSWER, extract_answer, normalize

# numeric: two numbers match within this relative tolerance (at least absolute 1e-6).
NUMERIC_TOLERANCE = 1e-6
_NUMBER = re.compile(r"[-+]?(?:\d[\d,]*)?\.?\d+(?:[eE][-+]?\d+)?")
# format: a reasoning block with at least one numbered step.
_STEP = re.compile(r"^\d+\. \S", re.MULTILINE)


@dataclass(frozen=True)
class Reward:
    name: str
    description: str
    score: Callable[[str, str], float]  # (completion, reference final_answer) -> [0, 1]


def exact_match(completion: str, reference: str) -> float:
    """EvaluateRun's scorer: the text after "Answer:" equals the reference."""
    return float(normalize(extract_answer(completion)) == normalize(reference))


def _number(text: str) -> float | None:
    found = _NUMBER.search(text)
    if found is None:
        return None
    try:
        value = float(found.group().replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def numeric(completion: str, reference: str) -> float:
    """The first number of the answer equals the reference's; a reference that is not
    a number is scored by exact match."""
    expected = _number(reference)
    if expected is None:
        return exact_match(completion, reference)
    got = _number(extract_answer(completion))
    if got is None:
        return 0.0
    return float(math.isclose(got, expected, rel_tol=NUMERIC_TOLERANCE, abs_tol=1e-6))


def well_formed(completion: str, reference: str) -> float:
    """A "Reasoning:" block with numbered steps before exactly one "Answer:" line."""
    reasoning, _, rest = completion.partition("Reasoning:\n")
    if reasoning.strip() or not _STEP.search(rest.split(ANSWER, 1)[0]):
        return 0.0
    answers = [line for line in completion.splitlines() if line.startswith(ANSWER)]
    return float(len(answers) == 1 and completion.count(ANSWER) == 1)


def zero_variance_share(rewards: Sequence[float], group: int) -> float:
    """Share of prompts whose `group` consecutive completions all scored the same:
    their advantages are zero, so they teach the policy nothing."""
    if not len(rewards):
        return 0.0
    groups = [rewards[i : i + group] for i in range(0, len(rewards), group)]
    return sum(max(g) == min(g) for g in groups) / len(groups)


REWARDS: dict[str, Reward] = {
    r.name: r
    for r in (
        Reward(
            "exact_match",
            '1 when the text after "Answer:" equals final_answer (case, runs of spaces '
            "and a final period aside; EvaluateRun's scorer), else 0",
            exact_match,
        ),
        Reward(
            "numeric",
            "1 when the answer's first number equals final_answer's within a relative "
            f'{NUMERIC_TOLERANCE:g} ("1,200.0" matches "1200"), else 0; a final_answer '
            "that is not a number is scored as exact_match",
            numeric,
        ),
        Reward(
            "format",
            '1 when the completion is a "Reasoning:" block of numbered steps followed by '
            'exactly one "Answer:" line, as the tunix_sft rendering writes it, else 0',
            well_formed,
        ),
    )
}
