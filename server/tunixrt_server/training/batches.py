"""Examples to token batches (numpy only, so it is testable without JAX).

Each row is BOS + prompt + completion + EOS. A row longer than max_seq_len
keeps its whole completion and loses the start of its prompt; a row whose
completion alone does not fit is dropped. Both are counted, never silent.

Batches are padded to one of a few bucket lengths rather than always to
max_seq_len (few shapes, so few XLA compiles, each worth the padding it
saves), and rows of similar length are grouped into the same batch so the
padding stays small. `completion_mask` marks the tokens the loss is computed
on (the model turn and EOS); `padding_mask` marks every real token, for
attention.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

# The chosen max_seq_len: this quantile of the train split's lengths, rounded up.
LENGTH_QUANTILE = 0.99
LENGTH_MULTIPLE = 64
# Padded batch lengths: at most this many, multiples of BUCKET_MULTIPLE, and max_seq_len.
BUCKETS = 4
BUCKET_MULTIPLE = 8
# What one more padded length costs, in tokens of training: a compile of the train
# and eval steps (~9 s for tiny-gemma3 on 2 cores, where a token takes ~0.26 ms).
COMPILE_COST_TOKENS = 32_768
# An answer budget from references: the longest completion, its end marker, a margin.
ANSWER_MARGIN_TOKENS = 16
MAX_NEW_TOKENS = 4_096
# Rows are sorted by length within windows of this many batches, then the
# batches of a window are shuffled: similar lengths share a batch, and the
# order stays random at the scale of the run.
GROUP_WINDOW_BATCHES = 16


class Example(NamedTuple):
    prompt: str  # the rendered prompt turns
    completion: str  # the rendered model turn
    answer: str = ""  # the reference final answer, for exact match
    category: str = ""


class Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...
    def bos_id(self) -> int: ...
    def eos_id(self) -> int: ...
    def pad_id(self) -> int: ...


def round_up(value: int, multiple: int) -> int:
    return max(multiple, math.ceil(value / multiple) * multiple)


def choose_max_seq_len(lengths: Sequence[int], cap: int) -> int:
    """The train split's LENGTH_QUANTILE token length, rounded up to a multiple of
    LENGTH_MULTIPLE, at most `cap` (the model's context)."""
    if not len(lengths):
        return min(cap, LENGTH_MULTIPLE)
    quantile = float(np.quantile(np.asarray(lengths), LENGTH_QUANTILE, method="higher"))
    return min(cap, round_up(int(quantile), LENGTH_MULTIPLE))


def answer_budget(completion_token_counts: Sequence[int]) -> int:
    """Tokens to decode so that every reference answer would fit, with a margin: a
    budget that cuts answers short would score as wrong what is only unfinished."""
    longest = max(completion_token_counts, default=0)
    return min(MAX_NEW_TOKENS, longest + 1 + ANSWER_MARGIN_TOKENS)


def bucket_lengths(
    lengths: Sequence[int] | np.ndarray,
    max_seq_len: int,
    rows_trained: int = 0,
    buckets: int = BUCKETS,
) -> list[int]:
    """The padded lengths that make a run compute the fewest tokens: each row padded
    to the smallest length that holds it, over `rows_trained` rows (the run's steps
    times its batch size; default one pass over `lengths`), plus COMPILE_COST_TOKENS
    for each length. At most `buckets` multiples of BUCKET_MULTIPLE, then
    max_seq_len for any longer eval row (compiled only if one comes).

    Found exactly (a partition of the sorted lengths, by dynamic programming), not
    from quantiles: a quantile rule pads the rows just past a quantile to the next
    length (half the demo's 72-80-token arithmetic rows went to 192)."""
    if not len(lengths):
        return [max_seq_len]
    widths = np.minimum([round_up(int(n), BUCKET_MULTIPLE) for n in lengths], max_seq_len)
    candidates, counts = np.unique(widths, return_counts=True)
    scale = (rows_trained or len(widths)) / len(widths)
    rows_before = np.concatenate([[0], np.cumsum(counts)])
    # cost[k][j]: the cheapest k+1 lengths for every row up to candidates[j], the last
    # of them candidates[j]; choice[k][j] the end of the previous segment (-1: none).
    m = len(candidates)
    cost = np.full((buckets, m), np.inf)
    choice = np.full((buckets, m), -1, dtype=np.int64)
    for j in range(m):
        cost[0, j] = scale * rows_before[j + 1] * candidates[j] + COMPILE_COST_TOKENS
    for k in range(1, buckets):
        for j in range(k, m):
            previous = np.arange(k - 1, j)
            total = (
                cost[k - 1, previous]
                + scale * (rows_before[j + 1] - rows_before[previous + 1]) * candidates[j]
                + COMPILE_COST_TOKENS
            )
            best = int(np.argmin(total))
            cost[k, j], choice[k, j] = total[best], previous[best]
    k, j = int(np.argmin(cost[:, m - 1])), m - 1
    chosen: list[int] = []
    while j >= 0:
        chosen.append(int(candidates[j]))
        j = int(choice[k, j])
        k -= 1
    return sorted(set(chosen) | {max_seq_len})


@dataclass
class Encoded:
    """Variable-length rows in one flat array: memory follows the real tokens."""

    tokens: np.ndarray  # all rows concatenated, int32
    offsets: np.ndarray  # row i is tokens[offsets[i]:offsets[i + 1]]
    prompt_lengths: np.ndarray  # BOS + prompt tokens kept, per row
    kept: np.ndarray  # index of each row in the examples given
    truncated: int  # rows whose prompt was cut from the left
    dropped: int  # examples left out: their completion alone does not fit
    max_seq_len: int
    pad_id: int

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def batch(self, rows: np.ndarray, width: int) -> dict[str, np.ndarray]:
        """Rows padded on the right to `width` tokens."""
        tokens = np.full((len(rows), width), self.pad_id, dtype=np.int32)
        completion = np.zeros((len(rows), width), dtype=bool)
        lengths = self.lengths[rows]
        for n, row in enumerate(rows):
            start, end = self.offsets[row], self.offsets[row + 1]
            tokens[n, : end - start] = self.tokens[start:end]
            completion[n, self.prompt_lengths[row] : end - start] = True
        padding = np.arange(width)[None, :] < lengths[:, None]
        return {"tokens": tokens, "padding_mask": padding, "completion_mask": completion}


def token_lengths(examples: Sequence[Example], tokenizer: Tokenizer) -> list[int]:
    """Each example's whole row length: BOS + prompt + completion + EOS."""
    return [
        2 + len(tokenizer.encode(e.prompt)) + len(tokenizer.encode(e.completion)) for e in examples
    ]


def encode(examples: Sequence[Example], tokenizer: Tokenizer, max_seq_len: int) -> Encoded:
    bos, eos = tokenizer.bos_id(), tokenizer.eos_id()
    rows: list[list[int]] = []
    prompt_lengths: list[int] = []
    kept: list[int] = []
    truncated = dropped = 0
    for index, example in enumerate(examples):
        completion = [*tokenizer.encode(example.completion), eos]
        room = max_seq_len - 1 - len(completion)  # prompt tokens that fit after BOS
        if room < 0:
            dropped += 1
            continue
        prompt = tokenizer.encode(example.prompt)
        if len(prompt) > room:
            prompt = prompt[len(prompt) - room :]
            truncated += 1
        rows.append([bos, *prompt, *completion])
        prompt_lengths.append(1 + len(prompt))
        kept.append(index)
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(r) for r in rows])
    flat = np.fromiter((t for r in rows for t in r), dtype=np.int32, count=int(offsets[-1]))
    return Encoded(
        flat,
        offsets,
        np.asarray(prompt_lengths, dtype=np.int64),
        np.asarray(kept, dtype=np.int64),
        truncated,
        dropped,
        max_seq_len,
        tokenizer.pad_id(),
    )


def _width(buckets: Sequence[int], longest: int) -> int:
    return next(b for b in buckets if b >= longest)


def train_batches(
    data: Encoded,
    batch_size: int,
    seed: int,
    should_stop: Callable[[], bool],
    buckets: Sequence[int],
) -> Iterator[dict[str, np.ndarray]]:
    """Endless seeded epochs of length-grouped batches; the same seed gives the same
    batch at every position, which is what lets a resumed run skip exactly the
    batches it already trained on."""
    rng = np.random.default_rng(seed)
    lengths = data.lengths
    window = batch_size * GROUP_WINDOW_BATCHES
    pending: list[np.ndarray] = []
    order = np.empty(0, dtype=np.int64)
    while not should_stop():
        if not pending:
            while order.size < window:
                order = np.concatenate([order, rng.permutation(len(data))])
            chunk, order = order[:window], order[window:]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            pending = [chunk[i : i + batch_size] for i in range(0, window, batch_size)]
            rng.shuffle(pending)
        rows = pending.pop()
        yield data.batch(rows, _width(buckets, int(lengths[rows].max())))


def eval_batches(
    data: Encoded, batch_size: int, buckets: Sequence[int]
) -> list[dict[str, np.ndarray]]:
    """Rows sorted by length into batches of the bucket shapes. A short last batch is
    filled with all-masked rows so every batch has a training shape and the fill
    adds nothing to the loss."""
    order = np.argsort(data.lengths, kind="stable")
    out = []
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        real = len(rows)
        rows = np.resize(rows, batch_size)
        batch = data.batch(rows, _width(buckets, int(data.lengths[rows].max())))
        batch["completion_mask"][real:] = False
        out.append(batch)
    return out
