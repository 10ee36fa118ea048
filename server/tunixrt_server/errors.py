"""API errors as google.rpc.Status with AIP-193 details.

Services raise ApiError anywhere (including worker threads); the interceptor in
interceptors.py turns it into a gRPC status with BadRequest / PreconditionFailure
/ ResourceInfo details and an ErrorInfo reason, so every client mistake gets
the right code and a message a person can act on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

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
    code: grpc.StatusCode
    message: str
    reason: str
    violations: list[FieldViolation] = field(default_factory=list)
    preconditions: list[tuple[str, str, str]] = field(default_factory=list)  # type, subject, why
    resource: tuple[str, str] | None = None  # type, name
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    def to_status(self) -> grpc.Status:
        details: list[object] = [
            error_details_pb2.ErrorInfo(
                reason=self.reason, domain=DOMAIN, metadata=dict(self.metadata)
            )
        ]
        if self.violations:
            details.append(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=clip(v.field, MAX_FIELD_BYTES),
                            description=clip(v.description, MAX_DESCRIPTION_BYTES),
                        )
                        for v in self.violations[:MAX_VIOLATIONS]
                    ]
                )
            )
        if self.preconditions:
            details.append(
                error_details_pb2.PreconditionFailure(
                    violations=[
                        error_details_pb2.PreconditionFailure.Violation(
                            type=t,
                            subject=clip(s, MAX_FIELD_BYTES),
                            description=clip(d, MAX_DESCRIPTION_BYTES),
                        )
                        for t, s, d in self.preconditions
                    ]
                )
            )
        if self.resource:
            details.append(
                error_details_pb2.ResourceInfo(
                    resource_type=self.resource[0],
                    resource_name=clip(self.resource[1], MAX_FIELD_BYTES),
                )
            )
        packed = []
        for detail in details:
            any_msg = any_pb2.Any()
            any_msg.Pack(detail)  # type: ignore[arg-type]
            packed.append(any_msg)
        status = status_pb2.Status(
            code=getattr(code_pb2, self.code.name),
            message=clip(self.message, MAX_MESSAGE_BYTES),
            details=packed,
        )
        converted: grpc.Status = rpc_status.to_status(status)
        return converted


def invalid_argument(
    violations: Iterable[FieldViolation], *, reason: str = "INVALID_ARGUMENT", message: str = ""
) -> ApiError:
    found = list(violations)
    if not message:
        message = "; ".join(f"{v.field}: {v.description}" for v in found[:5])
        if len(found) > 5:
            message += f" (and {len(found) - 5} more)"
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, message, reason, violations=found)


def bad_field(field_name: str, description: str, *, reason: str = "INVALID_ARGUMENT") -> ApiError:
    return invalid_argument([FieldViolation(field_name, description)], reason=reason)


def not_found(resource_type: str, name: str) -> ApiError:
    return ApiError(
        grpc.StatusCode.NOT_FOUND,
        f"{resource_type} {name!r} does not exist",
        f"{resource_type.upper()}_NOT_FOUND",
        resource=(resource_type, name),
    )


def already_exists(resource_type: str, name: str) -> ApiError:
    return ApiError(
        grpc.StatusCode.ALREADY_EXISTS,
        f"{resource_type} {name!r} already exists",
        f"{resource_type.upper()}_ALREADY_EXISTS",
        resource=(resource_type, name),
    )


def failed_precondition(
    message: str, *, reason: str, subject: str = "", violation_type: str = "STATE"
) -> ApiError:
    return ApiError(
        grpc.StatusCode.FAILED_PRECONDITION,
        message,
        reason,
        preconditions=[(violation_type, subject, message)],
    )
