from __future__ import annotations

from collections import Counter

from tunixrt_server.selection import EVAL, TRAIN, assign_splits, select_random, select_stratified


def test_random_selection_is_seeded() -> None:
    seqs = list(range(1000))
    assert select_random(seqs, 10, 7) == select_random(seqs, 10, 7)
    assert select_random(seqs, 10, 7) != select_random(seqs, 10, 8)
    assert len(select_random(seqs, 5000, 1)) == 1000


def test_stratified_selection_takes_turns_and_small_strata_whole() -> None:
    candidates = [(n, "big") for n in range(100)] + [(100 + n, "small") for n in range(3)]
    picked = select_stratified(candidates, 10, 1)
    strata = Counter("small" if seq >= 100 else "big" for seq in picked)
    assert strata == {"big": 7, "small": 3}
    assert select_stratified(candidates, 10, 1) == picked


def test_splits_hold_out_a_fraction_per_stratum() -> None:
    selected = list(range(100))
    strata = {n: "a" if n < 80 else "b" for n in selected}
    splits = assign_splits(selected, strata, 0.25, seed=3)
    held = Counter(strata[n] for n, split in zip(selected, splits, strict=True) if split == EVAL)
    assert held == {"a": 20, "b": 5}
    assert assign_splits(selected, strata, 0.0, 3) == [TRAIN] * 100
    assert assign_splits(selected, strata, 0.25, 3) == splits
