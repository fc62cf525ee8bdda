"""The REST API's sessions, bounded and self-expiring.

The store holds at most ``max_sessions`` sessions. A session idle for ``session_expiry_s`` expires: lazily, when
it is next asked for, and by :meth:`SessionStore.sweep`, which the API runs in the background. Closing a session
releases its MediaPipe graphs and hands freed heap back to the operating system.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from smartmirror.api.sessions import (
    AnalyzerFactory,
    Session,
    SessionBusy,
    SessionExpired,
    SessionNotFound,
    TooManySessions,
    release_memory,
    session_specs,
)
from smartmirror.api.settings import ApiSettings
from smartmirror.face import FaceTracker

log = logging.getLogger(__name__)

#: How many expired session ids are remembered (to answer 410 rather than 404).
EXPIRED_IDS_KEPT = 10_000


class SessionStore:
    """At most ``settings.max_sessions`` sessions, expiring after ``settings.session_expiry_s`` idle seconds.

    Parameters
    ----------
    settings : ApiSettings
        Limits (sessions, expiry, window).
    analyzer_factory : callable
        ``(pulse_method, fatigue_mode) -> [AnalyzerSpec]``; default :func:`session_specs` (emotion's rate
        from ``settings.emotion_interval_s``).
    clock : callable
        Monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        settings: ApiSettings,
        analyzer_factory: AnalyzerFactory = session_specs,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.settings = settings
        self.analyzer_factory = analyzer_factory
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._expired: OrderedDict[str, float] = OrderedDict()
        self._reserved = 0
        self.created_total = 0
        self.expired_total = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def create(self, pulse_method: str | None = None, fatigue_mode: str = "wellness") -> Session:
        """A new session.

        Raises
        ------
        TooManySessions
            When ``max_sessions`` are open; ``retry_after_s`` says when the next idle one expires.
        """
        self.sweep()
        with self._lock:
            if len(self._sessions) + self._reserved >= self.settings.max_sessions:
                raise TooManySessions(
                    f"All {self.settings.max_sessions} sessions are in use; delete one (DELETE /sessions/{{id}}) "
                    f"or wait for an idle one to expire ({self.settings.session_expiry_s:.0f} s of inactivity)",
                    retry_after_s=self._seconds_to_next_expiry(),
                )
            self._reserved += 1
        try:
            specs = [replace(spec, rate_s=self.settings.emotion_interval_s) if spec.name == "emotion" else spec
                     for spec in self.analyzer_factory(pulse_method, fatigue_mode)]
            session = Session(
                uuid.uuid4().hex,
                tracker=FaceTracker(static_image_mode=False),
                specs=specs,
                buffer_frames=self.settings.buffer_frames,
                buffer_seconds=self.settings.buffer_seconds,
                pulse_method=pulse_method,
                fatigue_mode=fatigue_mode,
                clock=self._clock,
            )
            with self._lock:
                self._sessions[session.session_id] = session
                self.created_total += 1
        finally:
            with self._lock:
                self._reserved -= 1
        return session

    def get(self, session_id: str) -> Session:
        """The live session with this id (expiring it first if it has been idle too long).

        Raises
        ------
        SessionNotFound, SessionExpired
        """
        expired = None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and self._is_expired(session):
                expired = self._sessions.pop(session_id)
                self._mark_expired(session_id)
            elif session is not None:
                return session
        if expired is not None:
            self._close([expired], "expired")
            raise SessionExpired(self._expired_message(session_id))
        with self._lock:
            if session_id in self._expired:
                raise SessionExpired(self._expired_message(session_id))
        raise SessionNotFound(f"No session {session_id!r}; create one with POST /sessions")

    @contextmanager
    def use(self, session_id: str, wait_s: float = 10.0) -> Iterator[Session]:
        """Hold a session for one request: it cannot expire meanwhile, and its frames run one request at a time.

        Raises
        ------
        SessionNotFound, SessionExpired, SessionBusy
        """
        session = self.get(session_id)
        with self._lock:
            session.in_use += 1
            session.touch()
        try:
            if not session.lock.acquire(timeout=wait_s):
                raise SessionBusy(f"Session {session_id} is busy with another request; retry shortly",
                                  retry_after_s=1.0)
            try:
                if session.closed and session.close_reason == "expired":
                    raise SessionExpired(self._expired_message(session_id))
                if session.closed:
                    raise SessionNotFound(f"Session {session_id} was deleted")
                yield session
            finally:
                session.lock.release()
        finally:
            with self._lock:
                session.in_use -= 1
                session.touch()

    def delete(self, session_id: str) -> None:
        """Remove and close a session.

        Raises
        ------
        SessionNotFound, SessionExpired
        """
        self.get(session_id)
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is None:
            raise SessionNotFound(f"No session {session_id!r}")
        self._close([session], "deleted")

    def sessions(self) -> list[Session]:
        """The live sessions, oldest first (expired ones are swept first)."""
        self.sweep()
        with self._lock:
            return sorted(self._sessions.values(), key=lambda s: s.created_s)

    def sweep(self) -> int:
        """Expire every session idle for longer than the expiry; returns how many expired."""
        with self._lock:
            expired = [s for s in self._sessions.values() if self._is_expired(s)]
            for session in expired:
                del self._sessions[session.session_id]
                self._mark_expired(session.session_id)
        if expired:
            log.info("expired %d idle session(s)", len(expired))
            self._close(expired, "expired")
        return len(expired)

    def close_all(self) -> None:
        """Close every session (server shutdown)."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        self._close(sessions, "shutdown")

    # -- helpers ---------------------------------------------------------------------------------------------
    def _is_expired(self, session: Session) -> bool:
        return session.in_use == 0 and session.idle_s() > self.settings.session_expiry_s

    def _mark_expired(self, session_id: str) -> None:
        self.expired_total += 1
        self._expired[session_id] = self._clock()
        while len(self._expired) > EXPIRED_IDS_KEPT:
            self._expired.popitem(last=False)

    def _expired_message(self, session_id: str) -> str:
        return (f"Session {session_id} expired after {self.settings.session_expiry_s:g} s without frames; "
                "create a new one with POST /sessions")

    def _seconds_to_next_expiry(self) -> float:
        idle = [s.idle_s() for s in self._sessions.values() if s.in_use == 0]
        if not idle:
            return self.settings.session_expiry_s
        return max(1.0, self.settings.session_expiry_s - max(idle))

    @staticmethod
    def _close(sessions: list[Session], reason: str) -> None:
        for session in sessions:
            with session.lock:  # never close the tracker under a running frame
                session.close(reason)
        release_memory()
