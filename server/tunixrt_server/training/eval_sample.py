"""The fixed sample of the eval split that exact match decodes during training
(numpy only, so it is testable without JAX)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .batches import Example


def exact_match_sample(examples: Sequence[Example], size: int, seed: int) -> list[Example]:
    """A fixed seeded sample, the same at every evaluation and every attempt, with
    an equal share of each category (a category with fewer examples gives its
    remainder to the others)."""
    if size <= 0 or not examples:
        return []
    order = np.random.default_rng(seed).permutation(len(examples))
    by_category: dict[str, list[int]] = {}
    for i in order:
        by_category.setdefault(examples[i].category, []).append(int(i))
    queues = [by_category[c] for c in sorted(by_category, key=lambda c: (len(by_category[c]), c))]
    chosen: list[int] = []
    for k, rows in enumerate(queues):  # smallest first, so leftovers flow to larger ones
        share = (size - len(chosen)) // (len(queues) - k)
        chosen += rows[:share]
    return [examples[i] for i in sorted(chosen)]
