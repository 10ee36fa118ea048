"""An ApiError as the gRPC status it ends its call with: the code, a capped
message, and google.rpc details (ErrorInfo always; BadRequest, PreconditionFailure
and ResourceInfo when the error has them)."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ..core.errors import (
    DOMAIN,
    MAX_DESCRIPTION_BYTES,
    MAX_FIELD_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_VIOLATIONS,
    ApiError,
    clip,
)


def status_code(error: ApiError) -> grpc.StatusCode:
    return grpc.StatusCode[error.code]


def to_status(error: ApiError) -> grpc.Status:
    details: list[object] = [
        error_details_pb2.ErrorInfo(
            reason=error.reason, domain=DOMAIN, metadata=dict(error.metadata)
        )
    ]
    if error.violations:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=clip(v.field, MAX_FIELD_BYTES),
                        description=clip(v.description, MAX_DESCRIPTION_BYTES),
                    )
                    for v in error.violations[:MAX_VIOLATIONS]
                ]
            )
        )
    if error.preconditions:
        details.append(
            error_details_pb2.PreconditionFailure(
                violations=[
                    error_details_pb2.PreconditionFailure.Violation(
                        type=t,
                        subject=clip(s, MAX_FIELD_BYTES),
                        description=clip(d, MAX_DESCRIPTION_BYTES),
                    )
                    for t, s, d in error.preconditions
                ]
            )
        )
    if error.resource:
        details.append(
            error_details_pb2.ResourceInfo(
                resource_type=error.resource[0],
                resource_name=clip(error.resource[1], MAX_FIELD_BYTES),
            )
        )
    packed = []
    for detail in details:
        any_msg = any_pb2.Any()
        any_msg.Pack(detail)  # type: ignore[arg-type]
        packed.append(any_msg)
    status = status_pb2.Status(
        code=getattr(code_pb2, error.code),
        message=clip(error.message, MAX_MESSAGE_BYTES),
        details=packed,
    )
    converted: grpc.Status = rpc_status.to_status(status)
    return converted
