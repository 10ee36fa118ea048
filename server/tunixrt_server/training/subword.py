"""A run's own subword tokenizer, trained on its train split when the run starts.

A model trained from scratch on a byte vocabulary reads every digit and letter
as one step: the demo's examples are ~3.2x longer than in a 1,024-piece BPE,
and a step costs at least that much more. SentencePiece BPE (the library and
format of Gemma's own `tokenizer.model`) learns the pieces from the run's own
text, so every later reader (Generate, a resume, an exported model, a run
started from that export) loads the same file through SentencePieceTokenizer.

- ids: pad 0, eos 1, bos 2, unk 3, as in Gemma 3; the turn markers are single
  pieces right after them;
- digits are split, so numbers are learned digit by digit, not as memorised
  whole tokens; other pieces may span spaces, as the text's set phrases do;
- byte fallback and the identity normalisation: any text, newlines and
  repeated spaces included, encodes and decodes back to itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..core.rendering import END, START

PAD, EOS, BOS, UNK = 0, 1, 2, 3
# Training reads at most this many texts (a random-free prefix keeps it deterministic).
MAX_TRAINING_TEXTS = 200_000
# Longer texts are skipped by SentencePiece's trainer unless allowed.
MAX_TEXT_BYTES = 65_536


def train(texts: Iterable[str], vocab_size: int, path: Path) -> int:
    """Writes a SentencePiece model to `path` (atomically); returns its piece count,
    which is `vocab_size` or fewer when the text has too little to learn from."""
    import sentencepiece as spm

    path.parent.mkdir(parents=True, exist_ok=True)
    # Each process of a worker group trains the same file: whole or not at all.
    prefix = path.with_name(f".{path.stem}.{os.getpid()}")
    sentences = (t for i, t in enumerate(texts) if i < MAX_TRAINING_TEXTS and t)
    spm.SentencePieceTrainer.train(
        sentence_iterator=sentences,
        model_prefix=str(prefix),
        model_type="bpe",
        vocab_size=vocab_size,
        hard_vocab_limit=False,  # a small train split gets a smaller vocabulary
        byte_fallback=True,
        pad_id=PAD,
        eos_id=EOS,
        bos_id=BOS,
        unk_id=UNK,
        user_defined_symbols=[START, END],
        character_coverage=1.0,
        split_digits=True,
        normalization_rule_name="identity",
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True,
        # Pieces may span words ("rank lower than"): the demo's High Card Duel rows
        # are 180 -> 146 tokens; digits stay split.
        split_by_whitespace=False,
        max_sentence_length=MAX_TEXT_BYTES,
        train_extremely_large_corpus=False,
        num_threads=1,  # one thread: the same pieces on every machine
        minloglevel=2,
    )
    Path(f"{prefix}.vocab").unlink(missing_ok=True)
    model = Path(f"{prefix}.model")
    processor = spm.SentencePieceProcessor(model_file=str(model))
    model.replace(path)
    return int(processor.get_piece_size())
