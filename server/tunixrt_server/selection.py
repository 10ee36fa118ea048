"""Dataset selection and train/eval split: pure, seeded, deterministic.

Candidates arrive from SQL already filtered and in a fixed order (oldest
first), so the same inputs over the same traces always give the same ids in
the same order.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

TRAIN, EVAL = 2, 3  # tunixrt.v1.DatasetSplit values


def select_random(seqs: Sequence[int], limit: int, seed: int) -> list[int]:
    return random.Random(seed).sample(list(seqs), min(limit, len(seqs)))


def select_stratified(candidates: Sequence[tuple[int, str]], limit: int, seed: int) -> list[int]:
    """Round-robin over strata (sorted by value), each stratum shuffled by `seed`."""
    strata: dict[str, list[int]] = defaultdict(list)
    for seq, stratum in candidates:
        strata[stratum].append(seq)
    rng = random.Random(seed)
    queues = []
    for name in sorted(strata):
        members = strata[name]
        rng.shuffle(members)
        queues.append(members)
    picked: list[int] = []
    depth = 0
    while len(picked) < limit and queues:
        queues = [q for q in queues if depth < len(q)]
        for q in queues:
            if len(picked) == limit:
                break
            picked.append(q[depth])
        depth += 1
    return picked


def assign_splits(
    selected: Sequence[int], strata: dict[int, str], eval_fraction: float, seed: int
) -> list[int]:
    """Hold out round(n * eval_fraction) items per stratum, chosen by `seed`."""
    splits = [TRAIN] * len(selected)
    if eval_fraction <= 0:
        return splits
    groups: dict[str, list[int]] = defaultdict(list)
    for position, seq in enumerate(selected):
        groups[strata.get(seq, "")].append(position)
    rng = random.Random(f"split:{seed}")
    for name in sorted(groups):
        positions = groups[name]
        for position in rng.sample(positions, round(len(positions) * eval_fraction)):
            splits[position] = EVAL
    return splits
