"""The eval loss reads as many held-out examples as exact match scores, in whole
batches (trainer.py imports Tunix: not tests/unit)."""

from __future__ import annotations

import pytest

from tunixrt_server.training.tunix_adapter.trainer import eval_loss_batches


@pytest.mark.parametrize(
    ("eval_examples", "batch_size", "batches"),
    [(64, 8, 8), (4, 8, 1), (100, 8, 13), (-1, 8, 8), (-1, 64, 1)],
)
def test_eval_loss_follows_eval_examples(eval_examples: int, batch_size: int, batches: int) -> None:
    assert eval_loss_batches(eval_examples, batch_size) == batches
