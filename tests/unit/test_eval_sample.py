"""The exact-match sample during training: equal shares per category, fixed by the
seed; the best checkpoint is chosen on the categories' mean."""

from __future__ import annotations

from collections import Counter

from tunixrt_server.core.scoring import Example, category_mean, score
from tunixrt_server.training.batches import Example as Row
from tunixrt_server.training.eval_sample import exact_match_sample


def _rows(counts: dict[str, int]) -> list[Row]:
    return [Row(f"{c} {i}", "c", "a", c) for c, n in counts.items() for i in range(n)]


def test_each_category_gets_an_equal_share_whatever_the_mix() -> None:
    rows = _rows({"arithmetic": 900, "high_card_duel": 100})
    sample = exact_match_sample(rows, 64, seed=0)
    assert Counter(r.category for r in sample) == {"arithmetic": 32, "high_card_duel": 32}


def test_a_small_category_gives_its_remainder_to_the_others() -> None:
    rows = _rows({"a": 5, "b": 100, "c": 100})
    sample = exact_match_sample(rows, 64, seed=1)
    assert Counter(r.category for r in sample) == {"a": 5, "b": 29, "c": 30}
    assert len(set(sample)) == 64


def test_the_sample_is_fixed_by_the_seed_and_in_split_order() -> None:
    rows = _rows({"a": 50, "b": 50})
    assert exact_match_sample(rows, 20, 3) == exact_match_sample(rows, 20, 3)
    assert exact_match_sample(rows, 20, 3) != exact_match_sample(rows, 20, 4)
    sample = exact_match_sample(rows, 20, 3)
    assert sample == sorted(sample, key=rows.index)
    assert exact_match_sample(rows, 0, 3) == [] and exact_match_sample([], 5, 3) == []


def test_category_mean_weighs_categories_alike() -> None:
    examples = [Example("p", "1", "easy")] * 2 + [Example("p", "1", "hard")] * 8
    outputs = ["Answer: 1"] * 2 + ["Answer: 1"] + ["Answer: 2"] * 7
    result = score(examples, outputs)
    assert result["accuracy"] == 0.3
    assert category_mean(result) == (1.0 + 1 / 8) / 2
    assert category_mean(score([], [])) == 0.0
