"""The two tokenizers a run can use, with the surface Tunix's trainer and sampler call
(encode, decode, bos_id, eos_id, pad_id).

ByteTokenizer: no vocabulary file, no download, any UTF-8 text round-trips. The
Gemma turn markers get one id each so a prompt does not spend 13 tokens on
`<start_of_turn>`. Ids: 0 pad, 1 bos, 2 eos, 3/4 the turn markers, 5.. bytes.

SentencePieceTokenizer: a SentencePiece `tokenizer.model`: Gemma's own, or the
one a from-scratch run trains on its train split (subword.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..core.rendering import END, START
from .hf_layout import BYTES

PAD, BOS, EOS = 0, 1, 2
_SPECIAL = {START: 3, END: 4}
_SPECIAL_TEXT = {v: k.encode() for k, v in _SPECIAL.items()}
_OFFSET = 5
VOCAB_SIZE = _OFFSET + 256
_SPLIT = re.compile(f"({re.escape(START)}|{re.escape(END)})")


class ByteTokenizer:
    """The encode/decode/bos_id/eos_id/pad_id surface Tunix's trainer and sampler use."""

    vocab_size = VOCAB_SIZE

    def encode(self, text: str, **_: object) -> list[int]:
        ids: list[int] = []
        for part in _SPLIT.split(text):
            special = _SPECIAL.get(part)
            if special is not None:
                ids.append(special)
            elif part:
                ids.extend(b + _OFFSET for b in part.encode())
        return ids

    def decode(self, ids: Sequence[int], **_: object) -> str:
        """Ids past the vocabulary (the embedding is padded to a multiple of 8, so an
        untrained model can emit them) decode to nothing."""
        out = bytearray()
        for i in ids:
            i = int(i)
            if _OFFSET <= i < VOCAB_SIZE:
                out.append(i - _OFFSET)
            elif i in _SPECIAL_TEXT:
                out += _SPECIAL_TEXT[i]
        return out.decode("utf-8", errors="replace")

    def bos_id(self) -> int:
        return BOS

    def eos_id(self) -> int:
        return EOS

    def pad_id(self) -> int:
        return PAD


class SentencePieceTokenizer:
    """A Gemma tokenizer.model. The model's embedding may be larger than the vocabulary
    (262,144 rows for any Gemma 3); ids past it decode to nothing rather than failing
    the whole generation, as the byte tokenizer does."""

    def __init__(self, path: str) -> None:
        import sentencepiece as spm

        self._sp = spm.SentencePieceProcessor()
        self._sp.Load(path)
        self.vocab_size = self._sp.get_piece_size()

    def encode(self, text: str, **_: object) -> list[int]:
        return list(self._sp.EncodeAsIds(text))

    def decode(self, ids: Sequence[int], **_: object) -> str:
        return str(self._sp.DecodeIds([i for i in map(int, ids) if 0 <= i < self.vocab_size]))

    def bos_id(self) -> int:
        return int(self._sp.bos_id())

    def eos_id(self) -> int:
        return int(self._sp.eos_id())

    def pad_id(self) -> int:
        return int(self._sp.pad_id())


def load(name: str) -> ByteTokenizer | SentencePieceTokenizer:
    """A run's tokenizer as its model.json names it: "bytes" (hf_layout.BYTES) or the
    path of a SentencePiece model."""
    return ByteTokenizer() if name == BYTES else SentencePieceTokenizer(name)
