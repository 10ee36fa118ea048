"""Decoding returns each prompt's answer in the order asked, whatever order the
chunks were decoded in (JAX in process: not tests/unit)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunixrt_server.core.runspec import BYTES, Model, RunSpec
from tunixrt_server.training.tunix_adapter import decoding, models


def test_answers_come_back_in_the_order_of_the_prompts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    desc = models.describe_once(RunSpec(Model(tokenizer=BYTES)), tmp_path, lambda: iter(()))
    decoder = decoding.Decoder(models.build(desc), models.load_tokenizer(desc), models.config(desc))
    monkeypatch.setattr(decoding, "MAX_BATCH", 2)  # three chunks of the longest first
    prompts = ["a", "bbbb", "cc", "dddddd", "eee"]  # lengths all differ: one sorted order
    answers = dict(zip(prompts, decoder(prompts, 8), strict=True))
    shuffled = ["eee", "a", "dddddd", "cc", "bbbb"]
    assert decoder(shuffled, 8) == [answers[p] for p in shuffled]
    assert len(set(answers.values())) > 1, "a random model answers each prompt its own way"
