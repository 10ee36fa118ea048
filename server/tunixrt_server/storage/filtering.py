"""Filter conditions to SQL expressions; every value is a bound parameter."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from ..core.filters import Condition
from .schema import traces, training_runs

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_COLUMNS = {
    "source": traces.c.source,
    "category": traces.c.category,
    "steps": traces.c.step_count,
    "create_time": traces.c.create_time_us,
}
_RUN_COLUMNS = {
    "dataset": training_runs.c.dataset_key,
    "state": training_runs.c.state,
    "create_time": training_runs.c.create_time_us,
}


def meta_value(
    path: tuple[str, ...], value: object, column: sa.Column[Any] = traces.c.meta
) -> sa.ColumnElement[Any]:
    """A JSON column (a trace's meta by default) at `path`, typed like `value`
    (string, number or boolean)."""
    element = column[path]
    typed: sa.ColumnElement[Any]
    if isinstance(value, bool):
        typed = element.as_boolean()
    elif isinstance(value, float):
        typed = element.as_float()
    else:
        typed = element.as_string()
    return typed


def stratum(key: str) -> sa.ColumnElement[Any]:
    """The STRATIFIED key's value per trace. `category` is the stored column (the
    string meta.category, as filters read it): its index covers a build, so
    selecting never reads the traces' bodies. Other keys are read from meta."""
    if key == "category":
        return traces.c.category
    return meta_value(tuple(key.split(".")), "")


def where(conditions: Sequence[Condition]) -> sa.ColumnElement[bool]:
    """A trace filter's conditions as one SQL expression."""
    clauses = []
    for cond in conditions:
        column = (
            meta_value(cond.meta_path, cond.value) if cond.field == "meta" else _COLUMNS[cond.field]
        )
        clauses.append(_OPS[cond.op](column, cond.value))
    return sa.and_(sa.true(), *clauses)


def runs_where(conditions: Sequence[Condition]) -> sa.ColumnElement[bool]:
    """A run filter's conditions (RUNS grammar, values normalised) as SQL."""
    clauses = []
    for cond in conditions:
        column = (
            meta_value(cond.meta_path, cond.value, training_runs.c.labels)
            if cond.field == "labels"
            else _RUN_COLUMNS[cond.field]
        )
        clauses.append(_OPS[cond.op](column, cond.value))
    return sa.and_(sa.true(), *clauses)
