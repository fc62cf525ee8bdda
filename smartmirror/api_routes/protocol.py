"""uvicorn's h11 protocol with a deadline for the request line and headers, and JSON protocol errors.

uvicorn has no request-header timeout: a client that opens a connection and sends its headers one byte at a time
(slowloris) holds the connection for ever. :func:`guarded_h11_protocol` closes a connection whose request line and
headers are not complete ``header_timeout_s`` after it opened (or after its previous response), and answers a
request h11 cannot parse (malformed, or headers over ``h11_max_incomplete_event_size``) with the API's JSON error
object instead of uvicorn's plain text.
"""

from __future__ import annotations

import asyncio
import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class GuardedH11Protocol(H11Protocol):
    """:class:`H11Protocol` plus a header deadline (``header_timeout_s``, set by :func:`guarded_h11_protocol`)."""

    header_timeout_s: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def _arm_header_deadline(self) -> None:
        handle = getattr(self, "_header_deadline", None)
        if handle is not None:
            handle.cancel()
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._header_deadline_passed)

    def _header_deadline_passed(self) -> None:
        self._header_deadline = None
        # IDLE on the client's side: the request line and headers of the next request are not complete yet
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info("closing a connection whose request headers took longer than %.0f s",
                             self.header_timeout_s)
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        handle = getattr(self, "_header_deadline", None)
        if handle is not None:
            handle.cancel()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        body = json.dumps({"error": {"code": "bad_http_request",
                                     "message": f"{msg} (malformed, or request line and headers too large)"}})
        event = h11.Response(status_code=400, reason=b"Bad Request", headers=[
            (b"content-type", b"application/json"), (b"connection", b"close"),
            (b"content-length", str(len(body)).encode()),
        ])
        try:
            self.transport.write(self.conn.send(event))
            self.transport.write(self.conn.send(h11.Data(data=body.encode())))
            self.transport.write(self.conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:  # h11 is already in an error state: just close
            pass
        self.transport.close()


def guarded_h11_protocol(header_timeout_s: float) -> type[GuardedH11Protocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` with this header deadline."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"header_timeout_s": float(header_timeout_s)})
