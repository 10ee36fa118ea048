"""Dataset selection and train/eval split as one INSERT … SELECT: the database sorts,
so a build's time is the database's and the server's memory stays flat in N.

Shuffles come from a seeded integer mix of each trace's seq, written with integer
operators that SQLite and PostgreSQL evaluate identically, so the same spec over
the same traces gives the same items, order and split on both. Strata are
ordered bytewise (PostgreSQL: COLLATE "C").
"""

from __future__ import annotations

import random
from typing import Any

import sqlalchemy as sa

from ..core.selection import EVAL, TRAIN
from .schema import traces

_MASK = 0xFFFFFFFF
# eval_fraction as an integer ratio, so rounding happens in integers on both databases.
_SCALE = 1_000_000
# PostgreSQL shifts a bigint by an int4 only.
_HALF = sa.literal(16, sa.Integer)


def shuffled(seq: sa.ColumnElement[int], salt: int) -> sa.ColumnElement[int]:
    """A seeded pseudo-random key per seq: multiply-and-fold rounds (each product
    stays below 2**63). Each round names its input twice, so two rounds keep the
    SQL small; an xor would need four references per round."""
    x = ((seq + salt).op("&")(_MASK) * 0x2C1B3C6D).op("&")(_MASK)
    x = ((x + x.op(">>")(_HALF)) * 0x297A2D39).op("&")(_MASK)
    return x + x.op(">>")(_HALF)


def salt(seed: int, purpose: str) -> int:
    return random.Random(f"{purpose}:{seed}").getrandbits(31)


def _bytewise(dialect: str, column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    return column.collate("C") if dialect == "postgresql" else column


def picked(
    dialect: str,
    where: sa.ColumnElement[bool],
    strategy: str,
    limit: int,
    seed: int,
    stratum: sa.ColumnElement[Any] | None,
) -> sa.Subquery:
    """(seq, stratum, position from 0) of the selected traces.

    LATEST: newest first. RANDOM: a seeded shuffle. STRATIFIED: round-robin over
    the strata in bytewise order, each stratum in its own seeded shuffle."""
    if strategy == "LATEST":
        order: list[sa.ColumnElement[Any]] = [traces.c.seq.desc()]
    else:
        order = [shuffled(traces.c.seq, salt(seed, "select")), traces.c.seq]
    label = (
        sa.func.coalesce(sa.cast(stratum, sa.String), "") if stratum is not None else sa.literal("")
    )
    candidates = sa.select(traces.c.seq, label.label("stratum")).where(where)
    if strategy != "STRATIFIED":
        ranked = candidates.add_columns(
            (sa.func.row_number().over(order_by=order) - 1).label("position")
        ).order_by(*order)
        return ranked.limit(limit).subquery()
    inner = candidates.add_columns(
        sa.func.row_number().over(partition_by=label, order_by=order).label("depth")
    ).subquery()
    key = [inner.c.depth, _bytewise(dialect, inner.c.stratum)]
    turns = sa.select(
        inner.c.seq,
        inner.c.stratum,
        (sa.func.row_number().over(order_by=key) - 1).label("position"),
    ).subquery()
    return sa.select(turns).where(turns.c.position < limit).subquery()


def with_splits(
    dialect: str, selected: sa.Subquery, eval_fraction: float, seed: int, dataset_seq: int
) -> sa.Select[Any]:
    """(dataset_seq, position, seq, split), dataset_items' columns, in the order to
    insert them: round(n * eval_fraction) of each stratum's n items held out,
    chosen by a seeded shuffle."""
    owner = sa.literal(dataset_seq)
    if eval_fraction <= 0:
        return _insert_order(
            dialect, sa.select(owner, selected.c.position, selected.c.seq, sa.literal(TRAIN))
        )
    shuffle = shuffled(selected.c.seq, salt(seed, "split"))
    order = [shuffle, selected.c.seq]
    rank = sa.func.row_number().over(partition_by=selected.c.stratum, order_by=order)
    # The stratum's count over the same window (whole frame), so one sort serves both.
    count = sa.func.count().over(partition_by=selected.c.stratum, order_by=order, rows=(None, None))
    scaled = count * round(eval_fraction * _SCALE)
    inner = sa.select(
        selected.c.position, selected.c.seq, rank.label("rank"), scaled.label("scaled")
    ).subquery()
    # round(scaled / _SCALE), halves to even as Python's round(), in integers.
    whole = inner.c.scaled // _SCALE
    twice_rest = (inner.c.scaled - whole * _SCALE) * 2
    up = sa.or_(twice_rest > _SCALE, sa.and_(twice_rest == _SCALE, whole % 2 == 1))
    held = whole + sa.case((up, 1), else_=0)
    split = sa.case((inner.c.rank <= held, EVAL), else_=TRAIN)
    return _insert_order(dialect, sa.select(owner, inner.c.position, inner.c.seq, split))


def _insert_order(dialect: str, items: sa.Select[Any]) -> sa.Select[Any]:
    """PostgreSQL checks each item's foreign key by locking its trace row: in trace
    order that walks the traces table once instead of at random (a 1M-item build's
    insert: 40 s -> 18 s). SQLite skips those checks in a build (copying_transaction)
    and is fastest appending to the primary key in position order."""
    _, position, seq, _ = items.selected_columns
    return items.order_by(seq if dialect == "postgresql" else position)
