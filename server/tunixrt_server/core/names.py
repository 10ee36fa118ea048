"""Resource names (AIP-122): `traces/{uuid}`, `datasets/{key}`, `trainingRuns/{uuid}`;
and the data-dir-relative paths a request may name."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from .errors import bad_field

_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")


def _strip(name: str, collection: str) -> str:
    prefix = collection + "/"
    return name[len(prefix) :] if name.startswith(prefix) else name


def parse_uuid_name(name: str, collection: str, field: str = "name") -> str:
    """Accept `collection/{uuid}` or a bare uuid; return the canonical uuid."""
    if not name:
        raise bad_field(field, f"is required, e.g. {collection}/3f2b...")
    raw = _strip(name, collection)
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise bad_field(field, f"{name!r} is not a {collection}/{{uuid}} name") from None


def check_key(key: str, field: str) -> str:
    """A dataset key or key part: lowercase letters, digits, `.`, `_`, `-`; no path tricks."""
    if not key:
        raise bad_field(field, "is required")
    if not _KEY.match(key) or ".." in key:
        raise bad_field(
            field,
            f"{key!r} must be 1..128 of a-z 0-9 . _ - , start with a letter or digit, "
            "and not contain '..'",
        )
    return key


def parse_dataset_name(name: str, field: str = "name") -> str:
    return check_key(_strip(name, "datasets"), field)


MAX_REQUEST_ID_CHARS = 128


def check_request_id(request_id: str) -> str | None:
    """An optional idempotency key (AIP-155): None when absent."""
    if len(request_id) > MAX_REQUEST_ID_CHARS:
        raise bad_field("request_id", f"must be at most {MAX_REQUEST_ID_CHARS} characters")
    return request_id or None


MAX_NAME_BYTES, MAX_PATH_BYTES = 255, 1024


def inside_data_dir(data_dir: Path, given: str, field: str) -> Path:
    """`given` relative to the (resolved) data dir; nothing from a request may point
    outside it."""
    if not given:
        raise bad_field(field, "is required: a path relative to the server's data dir")
    # Past these the filesystem answers ENAMETOOLONG, which must not become INTERNAL.
    if len(given.encode()) > MAX_PATH_BYTES or any(
        len(part.encode()) > MAX_NAME_BYTES for part in Path(given).parts
    ):
        raise bad_field(
            field, f"is too long: {MAX_NAME_BYTES} bytes a name, {MAX_PATH_BYTES:,} in all"
        )
    path = (data_dir / given).resolve()
    if not path.is_relative_to(data_dir) or path == data_dir:
        raise bad_field(field, "must be inside the server's data dir")
    return path
