"""One rule for text on both backends: no U+0000 (NUL) in any string a request carries.

PostgreSQL's text and JSONB cannot hold U+0000, while SQLite can: storing it
on one backend and failing on the other would give the same request two
answers. Escaping it instead would change the bytes every export format
shows. So every request string with a NUL is refused as INVALID_ARGUMENT,
naming the field: trace texts and meta (keys and values) in validation.py,
every other request field in the interceptor.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

NUL = "\x00"
SHOWN = "\\u0000"  # how a field path shows a NUL in a key
RULE = "must not contain U+0000 (NUL): it cannot be stored"


def json_paths(value: Any, path: str) -> list[str]:
    """Where a decoded JSON value holds a NUL, in a key or a string (`a.b`, `a[2]`)."""
    if isinstance(value, str):
        return [path] if NUL in value else []
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key.replace(NUL, SHOWN)}"
            found += [where] if NUL in key else json_paths(item, where)
    elif isinstance(value, list):
        for n, item in enumerate(value):
            found += json_paths(item, f"{path}[{n}]")
    return found


def message_paths(message: Message, prefix: str = "") -> list[str]:
    """Fields of a request message (nested, repeated, maps, Structs) that hold a NUL."""
    found: list[str] = []
    for field, value in message.ListFields():
        name = f"{prefix}{field.name}"
        if field.type == FieldDescriptor.TYPE_STRING:
            if field.is_repeated:
                found += [f"{name}[{n}]" for n, item in enumerate(value) if NUL in item]
            elif NUL in value:
                found.append(name)
        elif field.type != FieldDescriptor.TYPE_MESSAGE or field.message_type is None:
            continue
        elif field.message_type.full_name in ("google.protobuf.Struct", "google.protobuf.Value"):
            try:
                found += json_paths(json_format.MessageToDict(value), name)
            except ValueError:  # NaN/Infinity: validation refuses those itself
                continue
        elif field.message_type.GetOptions().map_entry:
            for key, item in value.items():
                where = f"{name}[{key.replace(NUL, SHOWN)}]"
                if NUL in key or (isinstance(item, str) and NUL in item):
                    found.append(where)
                elif isinstance(item, Message):
                    found += message_paths(item, f"{where}.")
        elif field.is_repeated:
            for n, item in enumerate(value):
                found += message_paths(item, f"{name}[{n}].")
        else:
            found += message_paths(value, f"{name}.")
    return found
