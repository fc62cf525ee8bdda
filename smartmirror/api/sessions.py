"""Sessions of the REST API: one face tracker and one set of analyzers per client, bounded and self-expiring.

A session is one person in front of one camera. Its frames arrive one request at a time (or in ordered batches)
and run through the session's own :class:`~smartmirror.face.FaceTracker` (video mode: landmarks tracked between
frames) and analyzers, which keep the temporal state heart rate needs. Frames are never stored: the session keeps
a bounded window of per-frame records (time, face found; at most ``buffer_frames`` frames and ``buffer_seconds``
of source time) for its status, and the analyzers keep their own bounded traces.

Frames run through :class:`smartmirror.pipeline.Pipeline`, the chain the live page and the clip report use.
The store of sessions is :mod:`smartmirror.api.session_store`.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from smartmirror.analyzer import json_value
from smartmirror.errors import CodedError
from smartmirror.face import FaceObservation, FaceTracker
from smartmirror.frames import FramePacket
from smartmirror.pipeline import Pipeline
from smartmirror.registry import DEFAULT_ANALYZERS, AnalyzerSpec, analyzer_specs

log = logging.getLogger(__name__)

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


#: ``(pulse_method, fatigue_mode) -> specs`` of one session's analyzers.
AnalyzerFactory = Callable[[str | None, str], list[AnalyzerSpec]]


def session_specs(pulse_method: str | None = None, fatigue_mode: str = "wellness") -> list[AnalyzerSpec]:
    """A session's analyzers: vitals, fatigue and emotion from the registry (live vitals states)."""
    return analyzer_specs(DEFAULT_ANALYZERS, mode=fatigue_mode, pulse_method=pulse_method, live=True)


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
        specs: list[AnalyzerSpec],
        buffer_frames: int,
        buffer_seconds: float,
        pulse_method: str | None,
        fatigue_mode: str,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.session_id = session_id
        self.tracker = tracker
        self.pipeline = Pipeline(specs, tracker=tracker).start()
        self.buffer_frames = buffer_frames
        self.buffer_seconds = buffer_seconds
        self.pulse_method = pulse_method
        self.fatigue_mode = fatigue_mode
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
        result = self.pipeline.step(FramePacket(t=t, image=image_bgr, index=self.frames_received))
        face = result.face
        error_code = error_message = None
        if face is None:
            error_code, error_message = "no_face", "No face found in the image"
        for name in result.updated:  # plain-JSON copies (``state.to_json()``): other threads never see live objects
            self.latest[name] = json_value(result.states[name])
        states = {name: self.latest.get(name) for name in result.states}
        self.last_t = t
        self.clock_mode = "server" if timestamp_s is None else "client"
        self.frames_received += 1
        self.frames_with_face += face is not None
        self._remember(FrameRecord(t=t, face_detected=face is not None))
        return FrameOutcome(
            frame_index=result.packet.index, t=t, face=face, num_faces=result.choice.faces_seen, states=states,
            error_code=error_code, error_message=error_message, warning=result.choice.warning,
            timings_s=result.timings_s,
        )

    def _remember(self, record: FrameRecord) -> None:
        self.records.append(record)
        while len(self.records) > self.buffer_frames or (
            len(self.records) > 1 and record.t - self.records[0].t > self.buffer_seconds
        ):
            self.records.popleft()

    def summaries(self) -> dict[str, dict[str, Any] | None]:
        """Each analyzer's ``summary()`` over the frames so far (call with :attr:`lock` held)."""
        return self.pipeline.summaries()

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
        self.pipeline.close()
        self.latest = {}
        self.records.clear()
