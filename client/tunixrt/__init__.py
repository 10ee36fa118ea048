"""tunix-rt client: generated tunixrt.v1 stubs and a thin typed SDK."""

from .client import Client
from .convert import trace_from_dict, trace_to_dict
from .errors import (
    AlreadyExists,
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    TunixRtError,
    Unauthenticated,
    Unavailable,
)
from .stream import Stream

__all__ = [
    "AlreadyExists",
    "Cancelled",
    "Client",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FieldViolation",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Stream",
    "TunixRtError",
    "Unauthenticated",
    "Unavailable",
    "trace_from_dict",
    "trace_to_dict",
]
