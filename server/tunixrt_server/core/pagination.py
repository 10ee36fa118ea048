"""Opaque page tokens (AIP-158): keyset cursors bound to the request they came from."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable, Sequence
from typing import TypeVar

import orjson

from .errors import bad_field

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1_000
T = TypeVar("T")


def page_size(
    requested: int, *, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE
) -> int:
    if requested < 0:
        raise bad_field("page_size", f"must be >= 0, got {requested}")
    return default if requested == 0 else min(requested, maximum)


def _fingerprint(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()[:16]


def encode_token(cursor: int, query: str) -> str:
    raw = orjson.dumps({"c": cursor, "q": _fingerprint(query)})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, query: str) -> int | None:
    """Return the cursor of a token (None for no token); the query must match."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = orjson.loads(raw)
        cursor, fingerprint = doc["c"], doc["q"]
    except (ValueError, KeyError, TypeError):
        raise bad_field("page_token", "is not a token this server issued") from None
    if not isinstance(cursor, int) or fingerprint != _fingerprint(query):
        raise bad_field(
            "page_token",
            "belongs to a request with other parameters (filter); start again without a token",
        )
    return cursor


async def paginate(
    fetch: Callable[[int, int | None], Sequence[T]],
    cursor_of: Callable[[T], int],
    *,
    requested_size: int,
    page_token: str,
    query: str,
    default: int = DEFAULT_PAGE_SIZE,
    maximum: int = MAX_PAGE_SIZE,
) -> tuple[Sequence[T], str]:
    """One page of a List RPC and the token for the next. `fetch(limit, cursor)` reads
    in a worker thread; one row more than the page tells whether another page
    exists without a COUNT."""
    size = page_size(requested_size, default=default, maximum=maximum)
    cursor = decode_token(page_token, query)
    rows = await asyncio.to_thread(fetch, size + 1, cursor)
    page = rows[:size]
    return page, encode_token(cursor_of(page[-1]), query) if len(rows) > size else ""
