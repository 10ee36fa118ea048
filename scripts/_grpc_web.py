"""A small gRPC-Web client over httpx, for the tests and scripts/bench_web.py: what
the browser console sends, from Python (the console itself uses connect-web)."""

from __future__ import annotations

import base64
import ssl
import struct
import urllib.parse
from collections.abc import Iterator
from typing import TypeVar

import grpc
import httpx
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)
FRAME = struct.Struct(">BI")


class GrpcWebError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str, trailers: dict[str, str]) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.trailers = trailers

    @property
    def details(self) -> bytes:
        """google.rpc.Status, serialised, when the server attached one."""
        value = self.trailers.get("grpc-status-details-bin", "")
        return base64.b64decode(value + "=" * (-len(value) % 4))


def _frames(chunks: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= FRAME.size:
            flags, length = FRAME.unpack_from(buffer)
            if len(buffer) < FRAME.size + length:
                break
            yield flags, buffer[FRAME.size : FRAME.size + length]
            buffer = buffer[FRAME.size + length :]


def _trailers(payload: bytes) -> dict[str, str]:
    pairs = (line.split(":", 1) for line in payload.decode().split("\r\n") if ":" in line)
    return {k.strip().lower(): v.strip() for k, v in pairs}


def _raise_for(trailers: dict[str, str]) -> None:
    code = int(trailers.get("grpc-status", "2"))
    if code:
        status = next(s for s in grpc.StatusCode if s.value[0] == code)
        raise GrpcWebError(status, urllib.parse.unquote(trailers.get("grpc-message", "")), trailers)


class GrpcWebClient:
    def __init__(self, base_url: str, *, token: str = "", cafile: str = "") -> None:
        headers = {"content-type": "application/grpc-web+proto", "x-grpc-web": "1"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        verify = ssl.create_default_context(cafile=cafile) if cafile else True
        self._http = httpx.Client(base_url=base_url, headers=headers, verify=verify, timeout=120)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GrpcWebClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stream(self, method: str, request: Message, reply: type[M]) -> Iterator[M]:
        body = request.SerializeToString()
        with self._http.stream("POST", method, content=FRAME.pack(0, len(body)) + body) as r:
            r.raise_for_status()
            for flags, payload in _frames(r.iter_raw()):
                if flags & 0x80:
                    _raise_for(_trailers(payload))
                    return
                yield reply.FromString(payload)
        raise GrpcWebError(grpc.StatusCode.UNKNOWN, "the response ended without trailers", {})

    def unary(self, method: str, request: Message, reply: type[M]) -> M:
        replies = list(self.stream(method, request, reply))
        if len(replies) != 1:
            got = f"{len(replies)} replies to a unary call"
            raise GrpcWebError(grpc.StatusCode.UNKNOWN, got, {})
        return replies[0]
