"""A run's subword tokenizer (training/subword.py): deterministic, lossless, and
the Gemma layout of special ids."""

from __future__ import annotations

from pathlib import Path

import sentencepiece as spm

from tunixrt_server.core.rendering import END, START, completion_turn, prompt_turns
from tunixrt_server.training import subword

TEXTS = [
    prompt_turns(f"Ana has {a} apples and gets {b} more.  How many?\n")
    + completion_turn([{"content": f"{a} + {b} = {a + b}"}], str(a + b))
    for a in range(40)
    for b in range(0, 40, 3)
]


def test_the_same_text_trains_the_same_tokenizer(tmp_path: Path) -> None:
    first = subword.train(iter(TEXTS), 400, tmp_path / "a" / "tokenizer.model")
    second = subword.train(iter(TEXTS), 400, tmp_path / "b" / "tokenizer.model")
    assert first == second <= 400

    def pieces(path: Path) -> list[tuple[str, float]]:
        sp = spm.SentencePieceProcessor(model_file=str(path))
        return [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]

    # The files differ only in where they were trained (a path in the trainer spec).
    assert pieces(tmp_path / "a" / "tokenizer.model") == pieces(tmp_path / "b" / "tokenizer.model")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["tokenizer.model"]


def test_any_text_round_trips_and_the_special_ids_are_gemmas(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.model"
    subword.train(iter(TEXTS), 400, path)
    sp = spm.SentencePieceProcessor(model_file=str(path))
    assert (sp.pad_id(), sp.eos_id(), sp.bos_id(), sp.unk_id()) == (0, 1, 2, 3)
    assert sp.encode(START) == [sp.piece_to_id(START)] and len(sp.encode(END)) == 1
    for text in [*TEXTS[:5], "never seen: Ωmega ♠ 12345  \t\n", "x" * 300]:
        assert sp.decode(sp.encode(text)) == text
    assert sp.encode("123") == [sp.piece_to_id(d) for d in "123"]  # digits split
