"""Trace generators: deterministic synthetic reasoning traces, as trace dicts or JSONL.

    tunix-rt traces generate arithmetic --count 2000 --seed 1 [--import]

Each generator is a function (count, seed, **options) -> iterator of trace
dicts in the shape ImportTraces takes; `arithmetic` takes `difficulty`. The
same seed gives the same traces in the same order (and the first n of a longer
run equal a run of n); all randomness comes from one `random.Random(seed)`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

Trace = dict[str, Any]
Generator = Callable[..., Iterator[Trace]]


def _trace(prompt: str, answer: str, steps: list[tuple[str, str]], meta: dict[str, Any]) -> Trace:
    return {
        "trace_version": "1.0",
        "prompt": prompt,
        "final_answer": answer,
        "steps": [{"i": i, "type": kind, "content": text} for i, (kind, text) in enumerate(steps)],
        "meta": meta,
    }


# ---- High Card Duel -----------------------------------------------------------

RANKS = "23456789TJQKA"
RANK_NAMES = dict(zip(RANKS, [*"23456789", "10", "Jack", "Queen", "King", "Ace"], strict=True))
SUITS = "♠♥♦♣"
RULES = (
    "High Card Duel: you and an opponent each draw one card from a 52-card deck; "
    "the higher rank wins (2 low, Ace high, equal ranks tie)."
)


def _card(index: int) -> str:
    return RANKS[index // 4] + SUITS[index % 4]


def _card_name(card: str) -> str:
    return f"{RANK_NAMES[card[0]]}{card[1]}"


def high_card_duel(count: int, seed: int) -> Iterator[Trace]:
    """Episodes of the two-player game: reason about the odds, then bet or fold."""
    rng = random.Random(seed)
    for episode in range(count):
        mine, theirs = rng.sample(range(52), 2)
        my_card, their_card = _card(mine), _card(theirs)
        rank = mine // 4
        lower, ties = rank * 4, 3
        higher = 51 - lower - ties
        win, lose = lower / 51, higher / 51
        decision = "bet" if win > lose else "fold"
        their_rank = theirs // 4
        result = "win" if rank > their_rank else "lose" if rank < their_rank else "tie"
        steps = [
            ("observe", f"My card is the {_card_name(my_card)}; 51 cards remain unseen."),
            (
                "count",
                f"{lower} of them rank lower than {RANK_NAMES[my_card[0]]}, {ties} tie and "
                f"{higher} rank higher.",
            ),
            (
                "probability",
                f"P(win) = {lower}/51 = {win:.3f}, P(tie) = 3/51 = {ties / 51:.3f}, "
                f"P(lose) = {higher}/51 = {lose:.3f}.",
            ),
            (
                "decide",
                f"P(win) {'>' if win > lose else '<='} P(lose), so the expected value of "
                f"betting is {'positive' if win > lose else 'not positive'}: {decision}.",
            ),
        ]
        yield _trace(
            f"{RULES} Your card: {_card_name(my_card)}. Bet or fold?",
            decision,
            steps,
            {
                "source": "high_card_duel",
                "game": "high_card_duel",
                "category": "game",
                "episode_index": episode,
                "my_card": my_card,
                "opponent_card": their_card,
                "result": result,
                "win_probability": round(win, 4),
                "seed": seed,
            },
        )


# ---- arithmetic word problems -------------------------------------------------

NAMES = ("Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goro", "Hana", "Ivan", "Jo")
ITEMS = ("apples", "marbles", "stickers", "books", "coins", "pencils", "shells", "cards")
# difficulty: (operations, largest starting number, largest operand)
DIFFICULTY = {"easy": (1, 20, 10), "medium": (2, 100, 20), "hard": (3, 500, 50)}


def _operation(rng: random.Random, value: int, largest: int) -> tuple[str, int, str, str]:
    """One step applied to `value`: (operation, new value, sentence, step text)."""
    op = rng.choice(("add", "subtract", "multiply", "divide"))
    if op == "divide":
        divisors = [d for d in range(2, min(largest, 12) + 1) if value % d == 0]
        if not divisors:
            op = "add"
        else:
            d = rng.choice(divisors)
            return (
                op,
                value // d,
                f"then shares them equally among {d} friends and keeps one share",
                f"{value} ÷ {d} = {value // d}",
            )
    if op == "subtract" and value > 1:
        n = rng.randint(1, min(value - 1, largest))
        return op, value - n, f"then gives away {n}", f"{value} - {n} = {value - n}"
    if op == "multiply":
        n = rng.randint(2, min(largest, 9))
        return (
            op,
            value * n,
            f"then the pile grows to {n} times as many",
            f"{value} × {n} = {value * n}",
        )
    n = rng.randint(1, largest)
    return "add", value + n, f"then gets {n} more", f"{value} + {n} = {value + n}"


def arithmetic(count: int, seed: int, difficulty: str = "") -> Iterator[Trace]:
    """Word problems whose steps compute the answer: easy (one operation on numbers up
    to 20), medium (two) and hard (three) in turn, or only the `difficulty` given."""
    if difficulty and difficulty not in DIFFICULTY:
        raise ValueError(f"unknown difficulty {difficulty!r}; known: {', '.join(DIFFICULTY)}")
    return _arithmetic(count, seed, [difficulty] if difficulty else list(DIFFICULTY))


def _arithmetic(count: int, seed: int, levels: list[str]) -> Iterator[Trace]:
    rng = random.Random(seed)
    for index in range(count):
        difficulty = levels[index % len(levels)]
        operations, start_max, largest = DIFFICULTY[difficulty]
        name, item = rng.choice(NAMES), rng.choice(ITEMS)
        start = value = rng.randint(2, start_max)
        sentences: list[str] = []
        ops: list[str] = []
        steps = [("setup", f"{name} starts with {start} {item}.")]
        for _ in range(operations):
            op, value_after, sentence, text = _operation(rng, value, largest)
            sentences.append(sentence)
            steps.append(("calculation", text))
            ops.append(op)
            value = value_after
        steps.append(("answer", f"{name} ends with {value} {item}."))
        prompt = (
            f"{name} has {start} {item}, {', '.join(sentences)}. "
            f"How many {item} does {name} have now?"
        )
        yield _trace(
            prompt,
            str(value),
            steps,
            {
                "source": "arithmetic",
                "category": "arithmetic",
                "difficulty": difficulty,
                "operations": ops,
                "index": index,
                "seed": seed,
            },
        )


GENERATORS: dict[str, Generator] = {
    "high_card_duel": high_card_duel,
    "arithmetic": arithmetic,
}
# Bumped whenever a generator's output for the same arguments changes.
VERSION = "1.0"


@dataclass(frozen=True)
class Parameter:
    """An option a generator takes, as a string (the server's GenerateTraces too)."""

    name: str
    description: str
    choices: tuple[str, ...] = ()
    default: str = ""


PARAMETERS: dict[str, tuple[Parameter, ...]] = {
    "high_card_duel": (),
    "arithmetic": (
        Parameter(
            "difficulty",
            "easy: one operation on numbers up to 20; medium: two; hard: three; "
            "empty: the three in turn",
            tuple(DIFFICULTY),
        ),
    ),
}


def describe(name: str) -> str:
    """A generator's description: its docstring's first paragraph, on one line."""
    return " ".join((GENERATORS[name].__doc__ or "").strip().split("\n\n")[0].split())


def generate(name: str, count: int, seed: int, **options: Any) -> Iterator[Trace]:
    try:
        generator = GENERATORS[name]
    except KeyError:
        raise ValueError(f"unknown generator {name!r}; known: {', '.join(GENERATORS)}") from None
    return generator(count, seed, **options)


def generate_jsonl(name: str, count: int, seed: int, **options: Any) -> Iterator[bytes]:
    """JSONL lines (with newline), byte-identical for the same arguments."""
    dumps = orjson.dumps
    return (dumps(trace) + b"\n" for trace in generate(name, count, seed, **options))
