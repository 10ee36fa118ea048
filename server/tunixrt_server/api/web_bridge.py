"""gRPC-Web on `--web-address`, for the browser console: each call is made again on
this server's own gRPC server, over a private Unix socket.

A browser cannot speak gRPC over HTTP/2; gRPC-Web is the same protos in
length-prefixed frames over an HTTP/1.1 POST, with the status in a last frame.
Forwarding each call to the gRPC server means it passes through exactly the
same interceptors (auth, roles, deadlines, error details, metrics), servicers
and message limits as a native call, by construction. sonora and connectrpc
were the alternatives: both run the servicers in their own stacks, without
grpc.aio's interceptors, so auth, limits and error mapping would need a second
copy. aiohttp serves HTTP/1.1 with TLS and streaming responses, and the
console's static files from the same port.

Client-streaming methods are refused (gRPC-Web has none); BatchCreateTraces
is the unary way to import.
"""

from __future__ import annotations

import asyncio
import base64
import re
import shutil
import ssl
import struct
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web
from google.protobuf.descriptor import ServiceDescriptor

from ..config import Settings

FRAME = struct.Struct(">BI")  # flags, length
TRAILERS = 0x80
CONTENT_TYPE = "application/grpc-web+proto"
# Request headers that travel to the gRPC server as metadata.
FORWARDED = ("authorization",)
TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
# The console's page may load only what the server itself serves.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:",
    "X-Content-Type-Options": "nosniff",
}
UNARY, SERVER_STREAMING, CLIENT_STREAMING = "unary", "server_streaming", "client_streaming"


def method_kinds(services: Iterable[ServiceDescriptor]) -> dict[str, str]:
    """`/tunixrt.v1.TraceService/GetTrace` -> unary, server_streaming or client_streaming."""
    kinds = {}
    for service in services:
        for method in service.methods:
            kind = (
                CLIENT_STREAMING
                if method.client_streaming
                else SERVER_STREAMING
                if method.server_streaming
                else UNARY
            )
            kinds[f"/{service.full_name}/{method.name}"] = kind
    return kinds


def frame(payload: bytes, flags: int = 0) -> bytes:
    return FRAME.pack(flags, len(payload)) + payload


def trailer_frame(code: grpc.StatusCode, details: str, metadata: Iterable[Any] = ()) -> bytes:
    lines = [f"grpc-status:{code.value[0]}", f"grpc-message:{urllib.parse.quote(details)}"]
    for key, value in metadata:
        if key.endswith("-bin"):  # binary values travel base64-encoded, as in HTTP/1 headers
            value = base64.b64encode(value).decode()
        lines.append(f"{key}:{value}")
    return frame("".join(f"{line}\r\n" for line in lines).encode(), TRAILERS)


def parse_timeout(value: str | None) -> float | None:
    match = re.fullmatch(r"(\d{1,8})([HMSmun])", value or "")
    return int(match[1]) * TIMEOUT_UNITS[match[2]] if match else None


class WebBridge:
    def __init__(
        self,
        target: str,
        services: Iterable[ServiceDescriptor],
        max_message_bytes: int,
        static_dir: Path,
    ) -> None:
        self._kinds = method_kinds(services)
        self._max_message_bytes = max_message_bytes
        self._static_dir = static_dir
        # No limits of its own: the gRPC server applies its limits to every call.
        self._channel = grpc.aio.insecure_channel(
            target,
            options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)],
        )

    def app(self) -> web.Application:
        app = web.Application()  # the body's size is checked as it streams in (_message)
        app.router.add_post("/{service}/{method}", self._call)
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", self._static_dir, append_version=False)
        app.on_response_prepare.append(_page_headers)
        return app

    async def close(self) -> None:
        await self._channel.close()

    async def _index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(self._static_dir / "index.html")

    async def _call(self, request: web.Request) -> web.StreamResponse:
        kind = self._kinds.get(request.path)
        if kind is None:
            return _status(grpc.StatusCode.UNIMPLEMENTED, f"no method {request.path}")
        if kind == CLIENT_STREAMING:
            return _status(
                grpc.StatusCode.UNIMPLEMENTED,
                f"{request.path} streams from the client, which gRPC-Web cannot; "
                "use /tunixrt.v1.TraceService/BatchCreateTraces to import",
            )
        if not request.content_type.startswith("application/grpc-web") or "text" in (
            request.content_type
        ):
            raise web.HTTPUnsupportedMediaType(text=f"send {CONTENT_TYPE}")
        message = await self._message(request)
        if isinstance(message, web.Response):
            return message
        metadata = tuple((k, request.headers[k]) for k in FORWARDED if k in request.headers)
        timeout = parse_timeout(request.headers.get("grpc-timeout"))
        if kind == UNARY:
            return await self._unary(request.path, message, metadata, timeout)
        return await self._stream(request, message, metadata, timeout)

    async def _message(self, request: web.Request) -> bytes | web.Response:
        limit = self._max_message_bytes
        if (request.content_length or 0) > limit + FRAME.size:
            return _too_large(request.content_length or 0, limit)
        body = bytearray()
        async for chunk in request.content.iter_chunked(1 << 16):
            body += chunk
            if len(body) > limit + FRAME.size:
                return _too_large(len(body), limit)
        if len(body) < FRAME.size:
            return _status(grpc.StatusCode.INVALID_ARGUMENT, "the body holds no gRPC-Web frame")
        flags, length = FRAME.unpack_from(body)
        if flags or len(body) != FRAME.size + length:
            return _status(
                grpc.StatusCode.INVALID_ARGUMENT,
                "send one uncompressed gRPC-Web message frame",
            )
        return bytes(body[FRAME.size :])

    async def _unary(
        self, method: str, message: bytes, metadata: Any, timeout: float | None
    ) -> web.Response:
        unary: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = self._channel.unary_unary(method)
        call = unary(message, metadata=metadata, timeout=timeout)
        try:
            reply: bytes = await call
        except grpc.aio.AioRpcError as exc:
            return _status(exc.code(), exc.details() or "", exc.trailing_metadata() or ())
        trailing = await call.trailing_metadata() or ()
        body = frame(reply) + trailer_frame(grpc.StatusCode.OK, "", trailing)
        return web.Response(body=body, content_type=CONTENT_TYPE)

    async def _stream(
        self, request: web.Request, message: bytes, metadata: Any, timeout: float | None
    ) -> web.StreamResponse:
        stream: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = self._channel.unary_stream(
            request.path
        )
        call = stream(message, metadata=metadata, timeout=timeout)
        response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            async for reply in call:
                await response.write(frame(reply))
            trailers = trailer_frame(
                await call.code(), await call.details() or "", await call.trailing_metadata() or ()
            )
        except grpc.aio.AioRpcError as exc:
            trailers = trailer_frame(exc.code(), exc.details() or "", exc.trailing_metadata() or ())
        except (asyncio.CancelledError, ConnectionError):
            call.cancel()  # the browser went away: so does the call on the server
            raise
        await response.write(trailers)
        await response.write_eof()
        return response


def _status(code: grpc.StatusCode, details: str, metadata: Iterable[Any] = ()) -> web.Response:
    return web.Response(body=trailer_frame(code, details, metadata), content_type=CONTENT_TYPE)


def _too_large(size: int, limit: int) -> web.Response:
    # The words and the code of the gRPC port's own refusal.
    return _status(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"Received message larger than max ({size - FRAME.size} vs. {limit})",
    )


async def _page_headers(request: web.Request, response: web.StreamResponse) -> None:
    if not request.path.startswith("/tunixrt."):
        response.headers.update(PAGE_HEADERS)


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def socket_target(socket_dir: str) -> str:
    """Where the gRPC server listens for the web port's calls: a Unix socket in a
    directory only this process's user can open."""
    return f"unix:{socket_dir}/grpc.sock"


@dataclass
class WebPort:
    """A started web port, and the private socket directory its calls go through."""

    bridge: WebBridge
    runner: web.AppRunner
    url: str
    socket_dir: str

    async def stop(self) -> None:
        await self.runner.cleanup()
        await self.bridge.close()
        shutil.rmtree(self.socket_dir, ignore_errors=True)


async def start(
    settings: Settings,
    services: Iterable[ServiceDescriptor],
    socket_dir: str,
    console_dir: Path,
) -> WebPort:
    """The web port on settings.web_address, calling the gRPC server listening on
    SOCKET_DIR/grpc.sock; TLS with the gRPC port's certificate when it has one."""
    bridge = WebBridge(
        socket_target(socket_dir),
        services,
        settings.max_receive_message_mb * 1024 * 1024,
        console_dir,
    )
    tls = (
        tls_context(settings.tls_cert_file, settings.tls_key_file)
        if settings.tls_cert_file and settings.tls_key_file
        else None
    )
    try:
        runner, port = await serve(bridge, settings.web_address, tls)
    except OSError as exc:
        raise SystemExit(f"tunix-rt: cannot listen on {settings.web_address}: {exc}") from None
    host = settings.web_address.rpartition(":")[0]
    return WebPort(bridge, runner, f"{'https' if tls else 'http'}://{host}:{port}/", socket_dir)


async def serve(
    bridge: WebBridge, address: str, tls: ssl.SSLContext | None
) -> tuple[web.AppRunner, int]:
    """Starts the web port; returns its runner (to stop it) and the bound port."""
    # A browser that closes the page cancels its handler, and so its call.
    runner = web.AppRunner(bridge.app(), handler_cancellation=True, access_log=None)
    await runner.setup()
    host, _, port = address.rpartition(":")
    site = web.TCPSite(runner, host.strip("[]") or None, int(port), ssl_context=tls)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or ()
    bound = sockets[0].getsockname()[1] if sockets else int(port)
    return runner, int(bound)
