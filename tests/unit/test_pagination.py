from __future__ import annotations

import asyncio

import pytest

from tunixrt_server.core.errors import ApiError
from tunixrt_server.core.pagination import decode_token, encode_token, page_size, paginate


def test_tokens_round_trip_and_are_bound_to_their_query() -> None:
    token = encode_token(42, 'source = "a"')
    assert decode_token(token, 'source = "a"') == 42
    assert decode_token("", "anything") is None
    with pytest.raises(ApiError, match="other parameters"):
        decode_token(token, 'source = "b"')
    with pytest.raises(ApiError, match="not a token"):
        decode_token("!!not-base64", "q")


def test_page_size_defaults_and_caps() -> None:
    assert page_size(0) == 50 and page_size(5) == 5 and page_size(10**6) == 1_000
    with pytest.raises(ApiError):
        page_size(-1)


def test_paginate_reads_one_extra_row_to_know_about_the_next_page() -> None:
    rows = list(range(100, 0, -1))  # newest first, keyed by value

    def fetch(limit: int, cursor: int | None) -> list[int]:
        return [r for r in rows if cursor is None or r < cursor][:limit]

    seen: list[int] = []
    token = ""
    while True:
        page, token = asyncio.run(
            paginate(fetch, lambda r: r, requested_size=30, page_token=token, query="q")
        )
        seen += page
        if not token:
            break
    assert seen == rows
