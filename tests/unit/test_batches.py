from __future__ import annotations

import numpy as np

from tunixrt_server.training.batches import (
    Encoded,
    Example,
    answer_budget,
    bucket_lengths,
    choose_max_seq_len,
    encode,
    eval_batches,
    token_lengths,
    train_batches,
)
from tunixrt_server.training.tokenizer import BOS, EOS, ByteTokenizer

TOKENIZER = ByteTokenizer()


def answer_tokens(batch: dict[str, np.ndarray], row: int) -> list[int]:
    return [int(t) for t in batch["tokens"][row][batch["completion_mask"][row]]]


def test_a_long_prompt_is_cut_from_the_left_and_every_answer_token_stays_in_the_loss() -> None:
    long = Example("<start_of_turn>user\n" + "blah " * 60 + "What is 2+2?", "Answer: 4")
    short = Example("Hi", "Answer: hello")
    too_long = Example("p", "Answer: " + "x" * 100)
    data = encode([long, short, too_long], TOKENIZER, 64)
    assert (data.truncated, data.dropped, list(data.kept)) == (1, 1, [0, 1])
    batch = data.batch(np.array([0, 1]), 64)
    assert answer_tokens(batch, 0) == [*TOKENIZER.encode("Answer: 4"), EOS]
    assert answer_tokens(batch, 1) == [*TOKENIZER.encode("Answer: hello"), EOS]
    assert batch["tokens"][0][0] == BOS and int(batch["padding_mask"][0].sum()) == 64
    kept_prompt = TOKENIZER.decode(batch["tokens"][0][1 : data.prompt_lengths[0]].tolist())
    assert long.prompt.endswith(kept_prompt) and kept_prompt.endswith("What is 2+2?")


def test_max_seq_len_from_the_data() -> None:
    lengths = [100] * 197 + [300, 300, 5000]
    assert choose_max_seq_len(lengths, cap=1024) == 320  # p99, rounded up to 64
    assert choose_max_seq_len(lengths, cap=256) == 256
    assert token_lengths([Example("ab", "c")], TOKENIZER) == [5]  # BOS a b c EOS
    mixed = [140] * 50 + [430] * 50
    assert bucket_lengths(mixed, 512, rows_trained=8000) == [144, 432, 512]
    # A short run does not pay a compile for the padding a second length would save.
    assert bucket_lengths(mixed, 512, rows_trained=80) == [432, 512]
    # Rows just past a quartile are not padded to the longest (the demo: 72-80, 180).
    assert bucket_lengths([72] * 40 + [80] * 60 + [180] * 100, 192, 8000) == [80, 184, 192]
    assert bucket_lengths([], 256) == [256]
    assert answer_budget([10, 300]) == 300 + 1 + 16


LONG_RUN = 100_000  # rows trained: enough that several lengths pay for their compiles


def grouped(data: Encoded, seed: int, n: int) -> list[dict[str, np.ndarray]]:
    buckets = bucket_lengths(data.lengths, data.max_seq_len, LONG_RUN)
    stream = train_batches(data, 4, seed, lambda: False, buckets)
    return [next(stream) for _ in range(n)]


def test_batches_are_bucketed_grouped_and_the_same_for_the_same_seed() -> None:
    examples = [Example("p" * (n % 50), "a" * (1 + n % 7)) for n in range(200)]
    data = encode(examples, TOKENIZER, 64)
    first, again = grouped(data, 3, 40), grouped(data, 3, 40)
    assert all((a["tokens"] == b["tokens"]).all() for a, b in zip(first, again, strict=True))
    widths = {b["tokens"].shape[1] for b in first}
    assert widths <= set(bucket_lengths(data.lengths, 64, LONG_RUN)) and len(widths) > 1
    padding = sum(float((~b["padding_mask"]).mean()) for b in first) / len(first)
    assert padding < 0.3, "rows of similar length share a batch"
    evals = eval_batches(data, 16, bucket_lengths(data.lengths, 64, LONG_RUN))
    assert sum(int(b["completion_mask"].any(axis=1).sum()) for b in evals) == len(data)
