"""Optional bearer-token auth with two roles.

With no tokens configured the server is open. With tokens, every RPC but the
health and reflection services needs `authorization: Bearer <token>`; a
`reader` may call the Get*, List*, Export* and Watch* methods (but not
ExportModel, which writes files on the server), a `writer` everything. The
caller of the current RPC is available to services through `current_caller()`
(e.g. as a run's created_by).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

import grpc

from ..core.errors import ApiError

ROLES = ("reader", "writer")
READ_METHODS = ("Get", "List", "Export", "Watch")
WRITES_FILES = ("ExportModel",)
OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@dataclass(frozen=True)
class Principal:
    name: str
    role: str


_caller: ContextVar[Principal | None] = ContextVar("tunixrt_caller", default=None)


def current_caller() -> Principal | None:
    return _caller.get()


def _refuse(code: grpc.StatusCode, message: str, reason: str) -> ApiError:
    return ApiError(code.name, message, reason)


class Authorizer:
    def __init__(self, tokens: Sequence[tuple[str, str, str]]) -> None:
        """tokens: (name, role, secret)."""
        self._tokens = [(secret.encode(), Principal(name, role)) for name, role, secret in tokens]

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def _lookup(self, secret: str) -> Principal | None:
        given = secret.encode()
        found = None
        for known, principal in self._tokens:  # constant time per token
            if hmac.compare_digest(known, given):
                found = principal
        return found

    def check(self, method: str, metadata: Iterable[tuple[str, str | bytes]] | None) -> None:
        """Raises UNAUTHENTICATED / PERMISSION_DENIED, or records the caller."""
        if not self._tokens or method.startswith(OPEN_SERVICES):
            _caller.set(None)
            return
        header = next((str(v) for k, v in metadata or () if k == "authorization"), "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret:
            raise _refuse(
                grpc.StatusCode.UNAUTHENTICATED,
                "this server needs a token: send metadata 'authorization: Bearer <token>' "
                "(SDK: Client(..., token=...); CLI: --token or TUNIXRT_TOKEN)",
                "MISSING_TOKEN",
            )
        principal = self._lookup(secret.strip())
        if principal is None:
            raise _refuse(grpc.StatusCode.UNAUTHENTICATED, "unknown token", "UNKNOWN_TOKEN")
        rpc = method.rsplit("/", 1)[-1]
        reads = rpc.startswith(READ_METHODS) and rpc not in WRITES_FILES
        if principal.role != "writer" and not reads:
            raise _refuse(
                grpc.StatusCode.PERMISSION_DENIED,
                f"token {principal.name!r} has role {principal.role!r}; {rpc} needs 'writer'",
                "WRITER_ROLE_REQUIRED",
            )
        _caller.set(principal)
