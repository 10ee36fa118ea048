from __future__ import annotations

import pytest

from tunixrt_server.core.errors import ApiError
from tunixrt_server.core.filters import MAX_CONDITIONS, Condition, parse_filter


def test_conditions_in_order_with_typed_values() -> None:
    parsed = parse_filter('source = "dev" AND meta.a.b != "x" AND steps >= 2')
    assert parsed == [
        Condition("source", "=", "dev"),
        Condition("meta", "!=", "x", ("a", "b")),
        Condition("steps", ">=", 2.0),
    ]
    assert parse_filter("") == []


@pytest.mark.parametrize(
    "text",
    [
        'source = "x" OR 1=1',
        "steps >= 2 AND",
        "unknown = 1",
        'steps >= "two"',
        'meta.a = "unterminated',
        " AND ".join(["steps > 1"] * (MAX_CONDITIONS + 1)),
    ],
)
def test_bad_filters_are_invalid_argument_naming_the_filter(text: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_filter(text)
    assert err.value.reason == "INVALID_FILTER"
    assert [v.field for v in err.value.violations] == ["filter"]
