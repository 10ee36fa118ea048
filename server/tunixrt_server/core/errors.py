"""API errors: what went wrong, for whom, in google.rpc terms, with no gRPC here.

Any module raises ApiError (including in worker threads); the interceptor
(interceptors.py, with status.py) turns it into a gRPC status with BadRequest /
PreconditionFailure / ResourceInfo details and an ErrorInfo reason, so every
client mistake gets the right code and a message a person can act on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

DOMAIN = "tunixrt.dev"
# A status travels in trailers, and gRPC refuses trailers past ~8 KiB (at random
# between its soft and hard limits): an error that echoes a huge request value
# would reach the client as RESOURCE_EXHAUSTED. So what a status carries is capped
# in UTF-8 bytes: grpc-message percent-encodes (up to 3x) and the details are
# base64 (4/3x), and the worst case stays near 6.5 KiB.
MAX_MESSAGE_BYTES = 700
MAX_FIELD_BYTES = 100
MAX_DESCRIPTION_BYTES = 200
MAX_VIOLATIONS = 8


def clip(text: str, limit: int) -> str:
    """At most `limit` UTF-8 bytes, saying how long the text was when it is cut."""
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= limit:
        return text
    head = encoded[: max(0, limit - 24)].decode("utf-8", "ignore")
    return f"{head}... ({len(text):,} chars)"


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


@dataclass(eq=False)  # exceptions must stay hashable
class ApiError(Exception):
    code: str  # a google.rpc.Code name: "INVALID_ARGUMENT", "NOT_FOUND", ...
    message: str
    reason: str
    violations: list[FieldViolation] = field(default_factory=list)
    preconditions: list[tuple[str, str, str]] = field(default_factory=list)  # type, subject, why
    resource: tuple[str, str] | None = None  # type, name
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


def invalid_argument(
    violations: Iterable[FieldViolation], *, reason: str = "INVALID_ARGUMENT", message: str = ""
) -> ApiError:
    found = list(violations)
    if not message:
        message = "; ".join(f"{v.field}: {v.description}" for v in found[:5])
        if len(found) > 5:
            message += f" (and {len(found) - 5} more)"
    return ApiError("INVALID_ARGUMENT", message, reason, violations=found)


def bad_field(field_name: str, description: str, *, reason: str = "INVALID_ARGUMENT") -> ApiError:
    return invalid_argument([FieldViolation(field_name, description)], reason=reason)


def not_found(resource_type: str, name: str) -> ApiError:
    return ApiError(
        "NOT_FOUND",
        f"{resource_type} {name!r} does not exist",
        f"{resource_type.upper()}_NOT_FOUND",
        resource=(resource_type, name),
    )


def already_exists(resource_type: str, name: str) -> ApiError:
    return ApiError(
        "ALREADY_EXISTS",
        f"{resource_type} {name!r} already exists",
        f"{resource_type.upper()}_ALREADY_EXISTS",
        resource=(resource_type, name),
    )


def failed_precondition(
    message: str, *, reason: str, subject: str = "", violation_type: str = "STATE"
) -> ApiError:
    return ApiError(
        "FAILED_PRECONDITION",
        message,
        reason,
        preconditions=[(violation_type, subject, message)],
    )
