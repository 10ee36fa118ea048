"""Typed exceptions mapped from gRPC status codes, with the google.rpc details decoded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import grpc
from google.rpc import error_details_pb2, status_pb2


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class TunixRtError(Exception):
    """Any error answered by the server (or the channel)."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        reason: str = "",
        field_violations: tuple[FieldViolation, ...] = (),
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.reason = reason
        self.field_violations = field_violations
        self.metadata = metadata or {}

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class InvalidArgument(TunixRtError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(TunixRtError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(TunixRtError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(TunixRtError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unauthenticated(TunixRtError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(TunixRtError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(TunixRtError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(TunixRtError):
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(TunixRtError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Cancelled(TunixRtError):
    code = grpc.StatusCode.CANCELLED


class Internal(TunixRtError):
    code = grpc.StatusCode.INTERNAL


_BY_CODE: dict[grpc.StatusCode, type[TunixRtError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        Unauthenticated,
        PermissionDenied,
        ResourceExhausted,
        Unavailable,
        DeadlineExceeded,
        Cancelled,
        Internal,
    )
}


def _status_details(exc: grpc.RpcError) -> list[Any]:
    # Works for sync calls and grpc.aio.AioRpcError alike.
    trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    for item in trailing or ():
        # sync calls yield _Metadatum namedtuples, grpc.aio plain tuples
        key, value = cast(tuple[str, Any], item)
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            return list(status_pb2.Status.FromString(value).details)
    return []


def from_rpc_error(exc: grpc.RpcError) -> TunixRtError:
    """Turn a grpc.RpcError (sync or aio) into the matching TunixRtError."""
    code: grpc.StatusCode = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    message = exc.details() if hasattr(exc, "details") else str(exc)
    reason = ""
    violations: list[FieldViolation] = []
    metadata: dict[str, str] = {}
    for detail in _status_details(exc):
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations.extend(FieldViolation(v.field, v.description) for v in bad.field_violations)
    cls = _BY_CODE.get(code, TunixRtError)
    return cls(
        message or code.name,
        code=code,
        reason=reason,
        field_violations=tuple(violations),
        metadata=metadata,
    )
