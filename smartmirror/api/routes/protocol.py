"""uvicorn's HTTP protocols with a deadline and a size bound for the request line and headers, and JSON errors.

uvicorn has no request-header timeout: a client that opens a connection and sends its headers one byte at a time
(slowloris) holds the connection for ever, and with httptools nothing bounds how much header it may send.
:func:`guarded_protocol` returns uvicorn's httptools protocol (h11 when httptools is missing) that closes a
connection whose request line and headers are not complete ``header_timeout_s`` after it opened (or after its
previous response), refuses headers past ``max_header_bytes`` while they arrive, and answers a request it cannot
parse with the API's JSON error object (``bad_http_request``) instead of uvicorn's plain text.

It also closes *lingering* when the server answers before the client has sent its whole body (the early 413 of an
oversized upload): it sends the answer and a FIN, reads and discards what still arrives until the client closes or
``linger_s`` pass, then closes. Closing at once with unread bytes makes the kernel answer the client's next bytes
with a reset, and the reset can destroy the answer before the client reads it (nginx's ``lingering_close``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

_HINT = "malformed, or request line and headers too large"


def _json_400(msg: str) -> bytes:
    return json.dumps({"error": {"code": "bad_http_request", "message": f"{msg} ({_HINT})"}}).encode()


class _LingeringTransport:
    """A transport whose ``close()`` lingers while the request body is still arriving (see the module's doc)."""

    def __init__(self, transport: asyncio.Transport, body_pending: Callable[[], bool], linger_s: float,
                 loop: asyncio.AbstractEventLoop):
        self._transport, self._body_pending, self._linger_s, self._loop = transport, body_pending, linger_s, loop
        self._close_timer: asyncio.TimerHandle | None = None
        self.lingering = False

    def close(self) -> None:
        transport = self._transport
        if self.lingering:             # asked again (the server shuts down): no more waiting
            self.cancel_timer()
            transport.close()
            return
        if transport.is_closing() or not transport.can_write_eof() or not self._body_pending():
            transport.close()
            return
        self.lingering = True
        transport.write_eof()          # the answer is flushed, then a FIN: the client reads it after its upload
        transport.resume_reading()     # discard the rest instead of leaving it unread
        self._close_timer = self._loop.call_later(self._linger_s, transport.close)

    def cancel_timer(self) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


class _LingeringClose:
    """Close lingering (see the module's doc): wraps the transport and discards what arrives while it lingers."""

    linger_s: float = 5.0
    transport: _LingeringTransport

    def _body_pending(self) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(_LingeringTransport(transport, self._body_pending, self.linger_s, self.loop))

    def data_received(self, data: bytes) -> None:
        if self.transport.lingering:
            return                     # the rest of a refused body
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport.cancel_timer()  # the client closed (uvicorn's eof_received lets asyncio close at its EOF)
        super().connection_lost(exc)


class _HeaderDeadline:
    """Close the connection when the next request's headers are not complete within ``header_timeout_s``."""

    header_timeout_s: float = 10.0
    max_header_bytes: int = 16384
    _header_deadline: asyncio.TimerHandle | None = None

    def _awaiting_headers(self) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._header_deadline_passed)

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_deadline_passed(self) -> None:
        self._header_deadline = None
        if self._awaiting_headers() and not self.transport.is_closing():
            self.logger.info("closing a connection whose request headers took longer than %.0f s",
                             self.header_timeout_s)
            self.transport.close()

    def _start_request(self) -> None:
        """Hook: a new request line and headers are awaited (reset per-request header state)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_request()
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._start_request()
        if not self.transport.is_closing():
            self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)


class GuardedH11Protocol(_HeaderDeadline, _LingeringClose, H11Protocol):
    """h11 (its ``h11_max_incomplete_event_size`` bounds the headers) with the header deadline and lingering
    close."""

    def _awaiting_headers(self) -> bool:
        return self.conn.their_state is h11.IDLE   # the request line and headers are not complete yet

    def _body_pending(self) -> bool:
        return self.conn.their_state is h11.SEND_BODY

    def send_400_response(self, msg: str) -> None:
        body = _json_400(msg)
        event = h11.Response(status_code=400, reason=b"Bad Request", headers=[
            (b"content-type", b"application/json"), (b"connection", b"close"),
            (b"content-length", str(len(body)).encode()),
        ])
        try:
            self.transport.write(self.conn.send(event))
            self.transport.write(self.conn.send(h11.Data(data=body)))
            self.transport.write(self.conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:  # h11 is already in an error state: just close
            pass
        self.transport.close()


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools not installed: h11 only
    HttpToolsProtocol = None


if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(_HeaderDeadline, _LingeringClose, HttpToolsProtocol):
        """httptools (fast, C) with the header deadline, a bound on header bytes while they arrive and lingering
        close."""

        _in_headers = True
        _header_bytes = 0

        def _awaiting_headers(self) -> bool:
            return self._in_headers

        def _body_pending(self) -> bool:
            return self.cycle is not None and self.cycle.more_body

        def _start_request(self) -> None:
            self._in_headers, self._header_bytes = True, 0

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._in_headers and not self.transport.is_closing():
                self._header_bytes += len(data)    # all of this chunk was request line and headers
                if self._header_bytes > self.max_header_bytes:
                    self.send_400_response("Invalid HTTP request received.")

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_headers = True

        def on_headers_complete(self) -> None:
            self._in_headers, self._header_bytes = False, 0
            super().on_headers_complete()

        def send_400_response(self, msg: str) -> None:
            body = _json_400(msg)
            head = (b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: "
                    + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n")
            self.transport.write(head + body)
            self.transport.close()


def guarded_protocol(header_timeout_s: float, max_header_bytes: int) -> type:
    """A protocol class for ``uvicorn.Config(http=...)`` with this header deadline (s) and size bound (bytes), and
    lingering close."""
    base = GuardedH11Protocol if HttpToolsProtocol is None else GuardedHttpToolsProtocol
    return type(base.__name__, (base,), {"header_timeout_s": float(header_timeout_s),
                                         "max_header_bytes": int(max_header_bytes)})
