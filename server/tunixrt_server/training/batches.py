"""Examples to fixed-shape token batches (numpy only, so it is testable without JAX).

Each row is BOS + prompt + completion + EOS, right-truncated to max_seq_len and
right-padded. `completion_mask` marks the tokens the loss is computed on (the
model turn and EOS); `padding_mask` marks every real token, for attention.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

Example = tuple[str, str]  # (prompt turns, completion turn)


class Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...
    def bos_id(self) -> int: ...
    def eos_id(self) -> int: ...
    def pad_id(self) -> int: ...


@dataclass
class Encoded:
    tokens: np.ndarray  # [N, L] int32
    padding_mask: np.ndarray  # [N, L] bool
    completion_mask: np.ndarray  # [N, L] bool

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def batch(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "tokens": self.tokens[rows],
            "padding_mask": self.padding_mask[rows],
            "completion_mask": self.completion_mask[rows],
        }


def encode(examples: Sequence[Example], tokenizer: Tokenizer, max_seq_len: int) -> Encoded:
    n, bos, eos = len(examples), tokenizer.bos_id(), tokenizer.eos_id()
    tokens = np.full((n, max_seq_len), tokenizer.pad_id(), dtype=np.int32)
    completion = np.zeros((n, max_seq_len), dtype=bool)
    lengths = np.zeros(n, dtype=np.int64)
    for row, (prompt, answer) in enumerate(examples):
        head = [bos, *tokenizer.encode(prompt)]
        ids = (head + tokenizer.encode(answer) + [eos])[:max_seq_len]
        tokens[row, : len(ids)] = ids
        completion[row, len(head) : len(ids)] = True
        lengths[row] = len(ids)
    padding = np.arange(max_seq_len)[None, :] < lengths[:, None]
    return Encoded(tokens, padding, completion)


def train_batches(
    data: Encoded, batch_size: int, seed: int, should_stop: Callable[[], bool]
) -> Iterator[dict[str, np.ndarray]]:
    """Endless seeded epochs; the same seed gives the same batch at every position,
    which is what lets a resumed run skip exactly the batches it already trained on."""
    rng = np.random.default_rng(seed)
    order = np.empty(0, dtype=np.int64)
    while not should_stop():
        while order.size < batch_size:
            order = np.concatenate([order, rng.permutation(len(data))])
        rows, order = order[:batch_size], order[batch_size:]
        yield data.batch(rows)


def eval_batches(data: Encoded, batch_size: int) -> list[dict[str, np.ndarray]]:
    """In order; the last batch is filled with all-masked rows so every batch has one
    shape (one compile) and the fill adds nothing to the loss."""
    out = []
    for start in range(0, len(data), batch_size):
        rows = np.arange(start, start + batch_size) % len(data)
        batch = data.batch(rows)
        batch["completion_mask"][len(data) - start :] = False
        out.append(batch)
    return out
