"""ASGI middleware: Host and Origin checks, API key, content types, body-size limit (early from Content-Length
and while streaming), time limit, metrics.

Cross-site use is refused even without an API key: a request whose ``Host`` is not an allowed name (DNS
rebinding: a hostile name resolving to 127.0.0.1) answers 403 ``host_not_allowed``; one whose ``Origin`` is
neither the server itself nor in ``cors_origins`` answers 403 ``origin_not_allowed``; a POST body must be
``application/json`` (or ``multipart/form-data`` for clips), types a cross-site page cannot send without a CORS
preflight, else 415 ``unsupported_media_type``.

Pure ASGI (no ``BaseHTTPMiddleware``) so that a refused request is answered before its body is read, and so a
request past its time limit is answered with a JSON 504 while the worker thread finishes on its own.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smartmirror.api.routes.errors import ApiError, error_response
from smartmirror.api.routes.metrics import ApiMetrics
from smartmirror.api.settings import ApiSettings

log = logging.getLogger(__name__)

#: Where /docs finds Swagger UI's files when they are served locally.
DOCS_STATIC_PATH = "/docs-static"

#: Paths answered without an API key (liveness probes and the documentation).
OPEN_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/openapi.json"})

#: Paths that take clip uploads (the longer time limit applies).
VIDEO_PATHS = frozenset({"/analyze-video", "/save_video"})

#: Scope key holding the request's deadline (``time.monotonic()`` seconds).
DEADLINE_KEY = "smartmirror.deadline"


class RequestGuard:
    """Refuse what is not allowed, bound what is, and count everything."""

    def __init__(self, app: ASGIApp, *, settings: ApiSettings, metrics: ApiMetrics):
        self.app = app
        self.settings = settings
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self._guarded(scope, receive, send_counted)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(scope["method"], label, status["code"], time.perf_counter() - start)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str,
                      headers: dict[str, str] | None = None) -> None:
        await error_response(status, code, message, headers)(scope, receive, send)

    def _refusal(self, scope: Scope, headers: Headers) -> tuple[int, str, str] | None:
        """(status, code, message) when the headers are too large, or the Host, Origin or content type is not
        allowed, else None."""
        size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        size += sum(len(name) + len(value) + 4 for name, value in scope["headers"])
        if size > self.settings.max_header_bytes:
            return 431, "headers_too_large", (f"The request line and headers are {size} bytes; the limit is "
                                              f"{self.settings.max_header_bytes} (SMARTMIRROR_MAX_HEADER_BYTES)")
        host_header = headers.get("host")
        if host_header is not None and not host_allowed(host_header, self.settings.allowed_hosts):
            return 403, "host_not_allowed", (f"Host {host_header[:100]!r} is not an allowed name of this server "
                                             "(SMARTMIRROR_ALLOWED_HOSTS)")
        origin = headers.get("origin")
        if origin is not None:
            same = host_header is not None and origin.rstrip("/").lower() == f"{scope['scheme']}://{host_header}".lower()
            allowed = self.settings.cors_origins
            if not (same or "*" in allowed or origin.rstrip("/") in allowed):
                return 403, "origin_not_allowed", (f"Requests from {origin[:100]!r} are not allowed "
                                                   "(SMARTMIRROR_CORS_ORIGINS)")
        if scope["method"] in ("POST", "PUT", "PATCH") and _has_body(headers):
            kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            wanted = "multipart/form-data" if scope["path"] in VIDEO_PATHS else "application/json"
            if kind != wanted and not (wanted == "application/json" and kind.endswith("+json")):
                return 415, "unsupported_media_type", (f"Send the body as {wanted} "
                                                       f"(got {kind or 'no Content-Type'})")
        return None

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        path = scope["path"]
        refused = self._refusal(scope, headers)
        if refused is not None:
            await self._refuse(scope, receive, send, *refused)
            return
        key = self.settings.api_key
        is_open = path in OPEN_PATHS or path.startswith(DOCS_STATIC_PATH + "/")
        if key and not is_open and scope["method"] != "OPTIONS":
            given = headers.get("x-api-key", "")
            if not hmac.compare_digest(given.encode(), key.encode()):
                message = "Missing X-API-Key header" if not given else "Wrong X-API-Key"
                await error_response(401, "unauthorized", message, {"WWW-Authenticate": "X-API-Key"})(
                    scope, receive, send
                )
                return
        limit = self.settings.max_upload_bytes
        declared = headers.get("content-length")
        if declared is not None:
            try:
                declared_bytes = int(declared)
            except ValueError:
                declared_bytes = -1
            if declared_bytes < 0:
                await error_response(400, "bad_request", "Invalid Content-Length header")(scope, receive, send)
                return
            if declared_bytes > limit:
                await error_response(
                    413, "payload_too_large",
                    f"The body is {declared_bytes / 2**20:.1f} MB; the limit is {limit / 2**20:.0f} MB",
                    {"Connection": "close"},
                )(scope, receive, send)
                return
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise ApiError(413, "payload_too_large",
                                   f"The body is larger than the limit of {limit / 2**20:.0f} MB",
                                   headers={"Connection": "close"})
            return message

        timeout_s = self.settings.video_timeout_s if path in VIDEO_PATHS else self.settings.request_timeout_s
        scope[DEADLINE_KEY] = time.monotonic() + timeout_s
        state = {"started": False, "timed_out": False}

        async def send_unless_late(message: Message) -> None:
            if state["timed_out"]:
                return
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive_limited, send_unless_late))
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if task in done:
            try:
                task.result()
            except Exception as exc:  # answered here, so uvicorn keeps the connection alive
                if state["started"]:
                    raise
                log.exception("unhandled error on %s %s", scope["method"], path, exc_info=exc)
                await error_response(500, "internal_error",
                                     f"Internal error ({exc.__class__.__name__}); see the server log")(
                    scope, receive, send
                )
            return
        state["timed_out"] = True
        task.cancel()
        task.add_done_callback(_log_late_failure)
        log.warning("%s %s passed its time limit of %.0f s", scope["method"], path, timeout_s)
        if not state["started"]:
            await error_response(504, "timeout", f"The request took longer than its limit of {timeout_s:g} s")(
                scope, receive, send
            )


def host_allowed(host_header: str, allowed: tuple[str, ...]) -> bool:
    """Whether the Host header (``name[:port]``, ``[v6]:port``) names an allowed host (``*``: any)."""
    if "*" in allowed:
        return True
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".") in allowed


def _has_body(headers: Headers) -> bool:
    length = headers.get("content-length")
    if length is not None:
        return length.strip() not in ("0", "")
    return "transfer-encoding" in headers


def _log_late_failure(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("a request that timed out failed later: %r", task.exception())


class JsonCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware, answering refused preflights with the JSON error object."""

    def preflight_response(self, request_headers: Headers):
        response = super().preflight_response(request_headers)
        if response.status_code >= 400:
            message = bytes(response.body).decode(errors="replace") or "CORS preflight refused"
            headers = {k: v for k, v in response.headers.items() if k.lower().startswith("access-control")}
            return error_response(response.status_code, "cors_refused", message, headers)
        return response
