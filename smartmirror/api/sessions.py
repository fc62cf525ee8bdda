"""Sessions of the REST API: one face tracker and one set of analyzers per client, bounded and self-expiring.

A session is one person in front of one camera. Its frames arrive one request at a time (or in ordered batches)
and run through the session's own :class:`~smartmirror.face.FaceTracker` (video mode: landmarks tracked between
frames) and analyzers, which keep the temporal state heart rate needs. Frames are never stored: the session keeps
a bounded window of per-frame records (time, face found; at most ``buffer_frames`` frames and ``buffer_seconds``
of source time) for its status, and the analyzers keep their own bounded traces.

The store holds at most ``max_sessions`` sessions. A session idle for ``session_expiry_s`` expires: lazily, when
it is next asked for, and by :meth:`SessionStore.sweep`, which the API runs in the background. Closing a session
releases its MediaPipe graphs and hands freed heap back to the operating system.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from smartmirror.analyzer import Analyzer, json_value
from smartmirror.api.settings import ApiSettings
from smartmirror.errors import CodedError
from smartmirror.face import FaceObservation, FaceTracker
from smartmirror.face_choice import choose_face
from smartmirror.frames import FramePacket

log = logging.getLogger(__name__)

#: Order in which analyzers see a frame: emotion uses the fatigue analyzer's state of the same frame.
ANALYZER_ORDER = ("fatigue", "emotion", "vitals")

#: Analyzers that need not see every frame, with their least source-clock interval between updates (seconds);
#: in between, their latest state stands. Heart rate and blinks need every frame; expressions change slowly.
DEFAULT_ANALYZER_INTERVALS_S = {"emotion": 0.2}

#: How many expired session ids are remembered (to answer 410 rather than 404).
EXPIRED_IDS_KEPT = 10_000


class SessionError(CodedError):
    """A session-level refusal with a stable ``code`` (the API maps each class to an HTTP status)."""

    code = "session_error"

    def __init__(self, message: str, *, code: str | None = None, retry_after_s: float | None = None):
        super().__init__(code, message)
        self.retry_after_s = retry_after_s


class SessionNotFound(SessionError):
    code = "session_not_found"


class SessionExpired(SessionError):
    code = "session_expired"


class TooManySessions(SessionError):
    code = "too_many_sessions"


class SessionBusy(SessionError):
    code = "session_busy"


class FrameOrderError(SessionError):
    code = "timestamp_not_increasing"


AnalyzerFactory = Callable[[str | None, str], dict[str, Analyzer]]


def installed_analyzers() -> dict[str, bool]:
    """Which analyzer packages can be imported (vitals, emotion, fatigue)."""
    found = {}
    for name, module, attr in (("vitals", "smartmirror.vitals", "VitalsAnalyzer"),
                               ("emotion", "smartmirror.emotion", "EmotionAnalyzer"),
                               ("fatigue", "smartmirror.fatigue", "FatigueAnalyzer")):
        try:
            found[name] = hasattr(__import__(module, fromlist=[attr]), attr)
        except ImportError:
            found[name] = False
    return found


def build_analyzers(pulse_method: str | None = None, fatigue_mode: str = "wellness") -> dict[str, Analyzer]:
    """Fresh analyzers for one session, in :data:`ANALYZER_ORDER`; packages that are not installed are skipped."""
    analyzers: dict[str, Analyzer] = {}
    try:
        from smartmirror.fatigue import FatigueAnalyzer

        analyzers["fatigue"] = FatigueAnalyzer(mode=fatigue_mode)
    except ImportError:
        pass
    try:
        from smartmirror.emotion import EmotionAnalyzer

        analyzers["emotion"] = EmotionAnalyzer()
    except ImportError:
        pass
    try:
        from smartmirror.vitals import VitalsAnalyzer

        analyzers["vitals"] = VitalsAnalyzer(method=pulse_method) if pulse_method else VitalsAnalyzer()
    except ImportError:
        pass
    for analyzer in analyzers.values():
        analyzer.reset()
    return analyzers


#: A plain-JSON copy of an analyzer state or summary (a :class:`~smartmirror.analyzer.State` by its ``to_json()``;
#: numpy to Python, non-finite floats to None).
jsonable = json_value


def release_memory() -> None:
    """Return freed heap pages to the operating system (glibc ``malloc_trim``; a no-op elsewhere)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _iso(wall_time_s: float) -> str:
    return datetime.fromtimestamp(wall_time_s, tz=UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class FrameRecord:
    """What the session remembers of one frame (never the pixels)."""

    t: float                 # seconds on the session clock
    face_detected: bool


@dataclass
class FrameOutcome:
    """The result of one frame: the face, the analyzers' states, a per-frame problem, timings."""

    frame_index: int
    t: float
    face: FaceObservation | None                 # the measured face (the largest when several were seen)
    num_faces: int                               # faces seen in the frame
    states: dict[str, dict[str, Any] | None]     # plain-JSON copies of the analyzers' states
    error_code: str | None = None                # "no_face"
    error_message: str | None = None
    warning: dict[str, str] | None = None        # {"code": "several_faces", "message"} (see face_choice)
    timings_s: dict[str, float] = field(default_factory=dict)


class Session:
    """One client's tracker, analyzers and bounded frame window. Callers hold :attr:`lock` while processing."""

    def __init__(
        self,
        session_id: str,
        *,
        tracker: FaceTracker,
        analyzers: dict[str, Analyzer],
        buffer_frames: int,
        buffer_seconds: float,
        pulse_method: str | None,
        fatigue_mode: str,
        analyzer_intervals_s: dict[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.session_id = session_id
        self.tracker = tracker
        self.analyzers = analyzers
        self.buffer_frames = buffer_frames
        self.buffer_seconds = buffer_seconds
        self.pulse_method = pulse_method
        self.fatigue_mode = fatigue_mode
        self.analyzer_intervals_s = DEFAULT_ANALYZER_INTERVALS_S if analyzer_intervals_s is None \
            else analyzer_intervals_s
        self._clock = clock
        self.lock = threading.Lock()
        self.created_wall_s = time.time()
        self.created_s = clock()
        self.last_activity_s = self.created_s
        self.in_use = 0
        self.frames_received = 0
        self.frames_with_face = 0
        self.clock_mode: str | None = None
        self.last_t: float | None = None
        self.records: deque[FrameRecord] = deque()
        self.latest: dict[str, dict[str, Any] | None] = {}
        self.last_update_t: dict[str, float] = {}
        self.closed = False
        self.close_reason: str | None = None   # "expired", "deleted" or "shutdown"

    # -- time ------------------------------------------------------------------------------------------------
    def touch(self) -> None:
        self.last_activity_s = self._clock()

    def idle_s(self, now: float | None = None) -> float:
        return (self._clock() if now is None else now) - self.last_activity_s

    def frame_time(self, timestamp_s: float | None) -> float:
        """The session-clock time of the next frame; client timestamps must increase strictly.

        Raises
        ------
        FrameOrderError
            ``timestamp_not_increasing`` or ``clock_mismatch`` (client and server timestamps mixed).
        """
        mode = "server" if timestamp_s is None else "client"
        if self.clock_mode is not None and mode != self.clock_mode:
            raise FrameOrderError(
                f"This session uses {self.clock_mode} timestamps; send every frame "
                + ("with timestamp_s" if self.clock_mode == "client" else "without timestamp_s"),
                code="clock_mismatch",
            )
        t = self._clock() - self.created_s if timestamp_s is None else float(timestamp_s)
        if self.last_t is not None and t <= self.last_t:
            if mode == "server":
                t = self.last_t + 1e-6
            else:
                raise FrameOrderError(
                    f"timestamp_s {t:.6f} is not after the previous frame's {self.last_t:.6f}; "
                    "frames must arrive in capture order"
                )
        return t

    # -- frames ----------------------------------------------------------------------------------------------
    def process(self, image_bgr: np.ndarray, timestamp_s: float | None) -> FrameOutcome:
        """Run one frame through the tracker and every analyzer (call with :attr:`lock` held).

        A frame without a face still reaches the analyzers (as ``face=None``: a gap in the measurement) and is
        reported in ``error_code``; with several faces the largest is measured and ``warning`` says so
        (:func:`smartmirror.face_choice.choose_face`, the rule the clip report and the live engine follow too).
        """
        t = self.frame_time(timestamp_s)
        packet = FramePacket(t=t, image=image_bgr, index=self.frames_received)
        timings: dict[str, float] = {}
        start = time.perf_counter()
        choice = choose_face(self.tracker.process(image_bgr))  # several faces: the largest, flagged
        timings["face"] = time.perf_counter() - start
        face = choice.face
        error_code = error_message = None
        if face is None:
            error_code, error_message = "no_face", "No face found in the image"
        states: dict[str, dict[str, Any] | None] = {}
        fatigue_state = None
        for name, analyzer in self.analyzers.items():
            interval = self.analyzer_intervals_s.get(name, 0.0)
            if interval > 0 and name in self.last_update_t and t - self.last_update_t[name] < interval:
                states[name] = self.latest.get(name)      # not due yet: its latest state stands
                continue
            self.last_update_t[name] = t
            start = time.perf_counter()
            try:
                if name == "emotion":
                    state = analyzer.update(packet, face, fatigue_state=fatigue_state)
                else:
                    state = analyzer.update(packet, face)
            except Exception:  # one failing analyzer must not lose the others' answers
                log.exception("session %s: analyzer %s failed on frame %d", self.session_id, name, packet.index)
                state = None
            timings[name] = time.perf_counter() - start
            if name == "fatigue":
                fatigue_state = state
            # the state's plain-JSON form (``state.to_json()``): readers in other threads never see an analyzer's
            # objects
            states[name] = self.latest[name] = jsonable(state)
        self.last_t = t
        self.clock_mode = "server" if timestamp_s is None else "client"
        self.frames_received += 1
        self.frames_with_face += face is not None
        self._remember(FrameRecord(t=t, face_detected=face is not None))
        return FrameOutcome(
            frame_index=packet.index, t=t, face=face, num_faces=choice.faces_seen, states=states,
            error_code=error_code, error_message=error_message, warning=choice.warning, timings_s=timings,
        )

    def _remember(self, record: FrameRecord) -> None:
        self.records.append(record)
        while len(self.records) > self.buffer_frames or (
            len(self.records) > 1 and record.t - self.records[0].t > self.buffer_seconds
        ):
            self.records.popleft()

    def summaries(self) -> dict[str, dict[str, Any] | None]:
        """Each analyzer's ``summary()`` over the frames so far (call with :attr:`lock` held)."""
        out = {}
        for name, analyzer in self.analyzers.items():
            try:
                out[name] = analyzer.summary()
            except Exception:
                log.exception("session %s: analyzer %s summary failed", self.session_id, name)
                out[name] = None
        return out

    # -- status ----------------------------------------------------------------------------------------------
    def info(self, expiry_s: float) -> dict[str, Any]:
        """The session's status as plain JSON types (without the analyzers' full states)."""
        now = self._clock()
        records = list(self.records)
        span = records[-1].t - records[0].t if len(records) > 1 else 0.0
        vitals = self.latest.get("vitals") or {}
        return {
            "session_id": self.session_id,
            "created_at": _iso(self.created_wall_s),
            "last_activity_at": _iso(self.created_wall_s + (self.last_activity_s - self.created_s)),
            "idle_s": round(self.idle_s(now), 3),
            "expires_in_s": round(max(0.0, expiry_s - self.idle_s(now)), 3),
            "frames_received": self.frames_received,
            "frames_with_face": self.frames_with_face,
            "buffered_frames": len(records),
            "buffered_seconds": round(span, 3),
            "measured_fps": round((len(records) - 1) / span, 3) if span > 0 else None,
            "clock": self.clock_mode,
            "pulse_method": self.pulse_method,
            "fatigue_mode": self.fatigue_mode,
            "heart_rate_bpm": vitals.get("heart_rate_bpm"),
            "heart_rate_confidence": vitals.get("heart_rate_confidence"),
        }

    def close(self, reason: str = "deleted") -> None:
        """Release the tracker's MediaPipe graphs and the analyzers (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self.tracker.close()
        self.analyzers = {}
        self.latest = {}
        self.records.clear()


class SessionStore:
    """At most ``settings.max_sessions`` sessions, expiring after ``settings.session_expiry_s`` idle seconds.

    Parameters
    ----------
    settings : ApiSettings
        Limits (sessions, expiry, window).
    analyzer_factory : callable
        ``(pulse_method, fatigue_mode) -> {name: Analyzer}``; default :func:`build_analyzers`.
    clock : callable
        Monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        settings: ApiSettings,
        analyzer_factory: AnalyzerFactory = build_analyzers,
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
            analyzers = self.analyzer_factory(pulse_method, fatigue_mode)
            session = Session(
                uuid.uuid4().hex,
                tracker=FaceTracker(static_image_mode=False),
                analyzers=analyzers,
                buffer_frames=self.settings.buffer_frames,
                buffer_seconds=self.settings.buffer_seconds,
                pulse_method=pulse_method,
                fatigue_mode=fatigue_mode,
                analyzer_intervals_s={"emotion": self.settings.emotion_interval_s},
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
