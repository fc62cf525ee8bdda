"""The live engine: one face-tracker pass per frame, analyzers on their own threads, a latest-state store.

Data flow::

    submit(packet) --(latest-frame slot)--> face thread --TrackedPacket--> FrameBuffer
                                                                     |--> analyzer threads (vitals, fatigue, ...)
                                                                     |          |  latest state + timestamps
                                                                     v          v
                                                          overlay slot     StateStore <-- agent thread (1 Hz)

- ``submit`` never blocks on a model: it drops the frame the face thread has not taken yet (counted) and returns.
- Every analyzer runs on a named daemon thread (``smartmirror-<name>``) at its own rate: ``rate_hz=None`` reads
  every tracked frame in order (vitals and fatigue need every frame), a number reads the newest frame at most that
  often (emotion).
- An analyzer that fails to load or raises is logged (traceback once, then a count) and its store entry is
  marked ``unavailable`` with the reason; the other analyzers and the stream keep running, and it retries after
  ``retry_after_s``.
- The agent thread reads the store once a second, builds the agent's context (DESIGN.md) and keeps the current
  suggestion in the store; :meth:`Engine.feedback` passes the user's answer on.
- Kiosk mode forgets everything (analyzer state, agent state, session) when no face was seen for
  ``kiosk_forget_s`` seconds of source time.

Testing hook (documented, used only by tests): ``SMARTMIRROR_TEST_FAILING_ANALYZER=<name>`` adds an analyzer of
that name whose ``update`` always raises ``RuntimeError``, to check that one failing analyzer leaves the rest
working and is shown as unavailable.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from smartmirror.analyzer import Analyzer
from smartmirror.face import FaceObservation, FaceTracker
from smartmirror.face_choice import choose_face
from smartmirror.frames import FrameBuffer, FramePacket

log = logging.getLogger(__name__)

MODES = ("wellness", "driver", "kiosk")

#: Python's GIL switch interval the app sets (``sys.setswitchinterval``; Python's default is 5 ms). With the face
#: tracker and the analyzers busy on other threads, every time the video callback releases the GIL (in OpenCV
#: or PyAV) it may wait a whole interval to get it back; 1 ms keeps the callback's latency low.
APP_SWITCH_INTERVAL_S = 0.001

#: Intra-op threads torch may use in the live app. The emotion CNN runs a small 64x64 model a few times a second;
#: with torch's default (one thread per core) its bursts took both cores of a 2-core machine and tripled the video
#: callback's 95th-percentile latency. One thread is plenty for it.
APP_TORCH_THREADS = 1


def tune_process_for_live(*, switch_interval_s: float = APP_SWITCH_INTERVAL_S,
                          torch_threads: int | None = APP_TORCH_THREADS) -> None:
    """Process-wide settings for the live app (``app.py`` and ``benchmarks/live.py`` call this; library code and
    the clip report do not): a short GIL switch interval and few torch threads (see the constants above)."""
    import sys

    sys.setswitchinterval(switch_interval_s)
    if torch_threads is not None:
        try:
            import torch
        except ImportError:  # no torch: nothing to limit
            return
        torch.set_num_threads(torch_threads)
FAILING_ANALYZER_ENV = "SMARTMIRROR_TEST_FAILING_ANALYZER"

STATUS_STARTING = "starting"
STATUS_OK = "ok"
STATUS_UNAVAILABLE = "unavailable"


# --- frames with their face -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackedPacket(FramePacket):
    """A frame with the face tracker's observation of it (``None``: no face).

    ``reused_face``: the tracker was busy when this frame came and skipped it; ``face`` is estimated from the
    frames it did track around it (:func:`between_faces`). Only analyzers whose spec asks for ``every_frame``
    read such packets.
    """

    face: FaceObservation | None = None
    reused_face: bool = False


#: Frames the face tracker skipped that are kept for ``every_frame`` analyzers until the next tracked frame.
MAX_SKIPPED_FRAMES = 15
#: Longest stretch (seconds) between two tracked faces across which a skipped frame's landmarks are interpolated.
MAX_INTERPOLATION_S = 1.0


def between_faces(t: float, before: tuple[float, FaceObservation] | None, after: tuple[float, FaceObservation]
                  ) -> FaceObservation:
    """The face at time ``t`` of a skipped frame: landmarks linearly interpolated between the tracked faces
    before and after it (the one after alone when there is none before, or it is over
    :data:`MAX_INTERPOLATION_S` away).

    A head that moves while the tracker is busy would otherwise leave the skin regions a few pixels off on the
    skipped frames, and that jump is colour noise in the pulse (on a real recording, with FaceMesh on every other
    frame: pulse SNR -0.9 dB interpolated vs -1.5 dB reusing the next face; -0.1 dB with every frame tracked).
    """
    t_after, face_after = after
    if before is None or not t_after - MAX_INTERPOLATION_S <= before[0] < t <= t_after:
        return face_after
    t_before, face_before = before
    if face_before.landmarks_px.shape != face_after.landmarks_px.shape:
        return face_after
    weight = (t - t_before) / (t_after - t_before)
    landmarks = face_before.landmarks_px + weight * (face_after.landmarks_px - face_before.landmarks_px)
    return dataclasses.replace(face_after, landmarks_px=landmarks.astype(face_after.landmarks_px.dtype),
                               _masks={})


# --- the latest-state store -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateEntry:
    """The latest state of one part (an analyzer, the face tracker, the agent).

    Attributes
    ----------
    name : str
        The part's name ("vitals", "emotion", "fatigue", "face", "agent", ...).
    status : str
        "starting", "ok" or "unavailable".
    state : dict or None
        The part's latest JSON-able state (kept from before a failure, for context).
    source_t : float or None
        Source-clock seconds of the frame the state comes from.
    updated_at : float
        Wall-clock seconds (``time.time()``) of the last change.
    error : str or None
        Why the part is unavailable.
    """

    name: str
    status: str
    state: dict[str, Any] | None = None
    source_t: float | None = None
    updated_at: float = 0.0
    error: str | None = None

    def age_s(self, now: float | None = None) -> float:
        """Wall-clock seconds since the last change."""
        return (time.time() if now is None else now) - self.updated_at


class StateStore:
    """Thread-safe latest value per part, with timestamps. Readers get immutable snapshots."""

    def __init__(self) -> None:
        self._entries: dict[str, StateEntry] = {}
        self._lock = threading.Lock()
        self._version = 0

    def set_starting(self, name: str) -> None:
        """Register a part that has not produced anything yet."""
        with self._lock:
            self._entries[name] = StateEntry(name, STATUS_STARTING, updated_at=time.time())
            self._version += 1

    def put(self, name: str, state: dict[str, Any] | None, *, source_t: float | None = None) -> None:
        """Record the latest state of ``name`` (status "ok")."""
        with self._lock:
            self._entries[name] = StateEntry(name, STATUS_OK, state, source_t, time.time())
            self._version += 1

    def mark_unavailable(self, name: str, error: str) -> None:
        """Mark ``name`` unavailable with a short reason (its last state is kept)."""
        with self._lock:
            old = self._entries.get(name)
            self._entries[name] = StateEntry(
                name,
                STATUS_UNAVAILABLE,
                old.state if old else None,
                old.source_t if old else None,
                time.time(),
                error,
            )
            self._version += 1

    def get(self, name: str) -> StateEntry | None:
        """The entry of ``name`` or None."""
        with self._lock:
            return self._entries.get(name)

    def state(self, name: str) -> dict[str, Any] | None:
        """The latest state of ``name`` when it is "ok", else None."""
        entry = self.get(name)
        return entry.state if entry is not None and entry.status == STATUS_OK else None

    def snapshot(self) -> dict[str, StateEntry]:
        """All entries (a shallow copy; entries are immutable)."""
        with self._lock:
            return dict(self._entries)

    def clear(self, keep: tuple[str, ...] = ()) -> None:
        """Forget every state except the names in ``keep`` (their entries return to "starting")."""
        with self._lock:
            now = time.time()
            self._entries = {
                name: StateEntry(name, STATUS_STARTING, updated_at=now) for name in self._entries if name in keep
            }
            self._version += 1

    @property
    def version(self) -> int:
        """Increments on every change (cheap change detection for the UI)."""
        with self._lock:
            return self._version


# --- analyzer specifications ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnalyzerSpec:
    """How the engine runs one analyzer.

    Attributes
    ----------
    name : str
        Store key and thread name suffix.
    factory : callable
        Builds the analyzer (imports inside, so a missing package only makes this analyzer unavailable).
    rate_hz : float or None
        None: every tracked frame, in order. A number: the newest frame at most this often.
    inputs : tuple of (keyword, state name)
        Other parts' latest states passed to ``update`` as keyword arguments, e.g.
        ``(("fatigue_state", "fatigue"),)`` for emotion's "tired" class.
    every_frame : bool
        Also read the frames the face tracker skipped while busy (with the face of the next tracked frame).
        For the vitals: a seated face moves little in 1/15 s, but a skipped frame is a hole in the pulse trace,
        and a machine that stalls about once a second makes holes at that rate, i.e. a false 40-60 bpm peak.
    """

    name: str
    factory: Callable[[], Analyzer]
    rate_hz: float | None = None
    inputs: tuple[tuple[str, str], ...] = ()
    every_frame: bool = False


def _vitals_factory(method: str | None) -> Callable[[], Analyzer]:
    def make() -> Analyzer:
        from smartmirror.vitals import VitalsAnalyzer

        return VitalsAnalyzer() if method is None else VitalsAnalyzer(method=method)

    return make


def _emotion_factory() -> Analyzer:
    from smartmirror.emotion import EmotionAnalyzer

    return EmotionAnalyzer()


def _fatigue_factory(mode: str) -> Callable[[], Analyzer]:
    def make() -> Analyzer:
        from smartmirror.fatigue import FatigueAnalyzer

        return FatigueAnalyzer(mode=mode)

    return make


def _identity_factory() -> Analyzer:
    from smartmirror.identity import IdentityAnalyzer

    return IdentityAnalyzer()


class FailingAnalyzer:
    """An analyzer whose ``update`` always raises (the tests' failure injection; see the module docstring)."""

    def __init__(self, name: str = "failing"):
        self.name = name

    def reset(self) -> None:
        pass

    def update(self, packet: FramePacket, face: FaceObservation | None) -> dict | None:
        raise RuntimeError(f"injected failure in analyzer {self.name!r} ({FAILING_ANALYZER_ENV})")

    def summary(self) -> dict | None:
        return None


def default_specs(
    mode: str = "wellness", *, identity: bool = False, pulse_method: str | None = None
) -> list[AnalyzerSpec]:
    """The app's analyzers: vitals and fatigue on every frame, emotion at 5 Hz (identity at 1 Hz when opted in).

    ``pulse_method`` picks the vitals' pulse extractor (None: the measured default); the app offers only methods
    registered as ``realtime``.

    With ``SMARTMIRROR_TEST_FAILING_ANALYZER=<name>`` set, an analyzer of that name that always raises replaces
    or joins them (tests only).
    """
    specs = [
        AnalyzerSpec("vitals", _vitals_factory(pulse_method), every_frame=True),
        AnalyzerSpec("fatigue", _fatigue_factory(mode)),
        AnalyzerSpec("emotion", _emotion_factory, rate_hz=5.0, inputs=(("fatigue_state", "fatigue"),)),
    ]
    if identity:
        specs.append(AnalyzerSpec("identity", _identity_factory, rate_hz=1.0))
    failing = os.environ.get(FAILING_ANALYZER_ENV, "").strip()
    if failing:
        specs = [s for s in specs if s.name != failing]
        specs.append(AnalyzerSpec(failing, lambda: FailingAnalyzer(failing)))
    return specs


# --- overlay and rates ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Overlay:
    """What the video callback draws: the newest tracked face (pixels of the unflipped frame)."""

    landmarks_xy: np.ndarray | None  # (478, 2) float32, or None when no face
    regions: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (n, 2) int32 polygon
    source_t: float = 0.0
    image_size: tuple[int, int] = (0, 0)  # (height, width)


class RateMeter:
    """Events per second over the last ``window`` events (wall clock), thread-safe."""

    def __init__(self, window: int = 60):
        self._times: deque[float] = deque(maxlen=window)
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        with self._lock:
            self._times.append(time.monotonic() if now is None else now)

    def rate(self, now: float | None = None) -> float:
        """Events per second; 0 when fewer than two events or the newest is older than 2 s."""
        with self._lock:
            if len(self._times) < 2:
                return 0.0
            now = time.monotonic() if now is None else now
            if now - self._times[-1] > 2.0:
                return 0.0
            span = self._times[-1] - self._times[0]
            return (len(self._times) - 1) / span if span > 0 else 0.0


class SourceClock:
    """Makes a source's timestamps usable: seconds, strictly increasing, across restarts and missing stamps.

    A missing time (None) is replaced by the monotonic wall clock since the first frame; a time that does not
    increase (a looping player, a reconnected camera) continues from the last one.
    """

    def __init__(self, nominal_step_s: float = 1 / 30):
        self.nominal_step_s = nominal_step_s
        self._offset = 0.0
        self._last: float | None = None
        self._wall_start: float | None = None
        self._lock = threading.Lock()

    def __call__(self, t: float | None) -> float:
        with self._lock:
            if self._wall_start is None:
                self._wall_start = time.monotonic()
            if t is None or not math.isfinite(t):
                t = time.monotonic() - self._wall_start
            value = t + self._offset
            if self._last is not None and value <= self._last:
                self._offset += self._last - value + self.nominal_step_s
                value = t + self._offset
            self._last = value
            return value


# --- the engine -------------------------------------------------------------------------------------------------


def _accepts(update: Callable, keyword: str) -> bool:
    try:
        params = inspect.signature(update).parameters
    except (TypeError, ValueError):
        return False
    return keyword in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _error_text(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= 300 else text[:297] + "..."


class Engine:
    """Runs the face tracker, the analyzers and the agent on threads over one frame buffer.

    Parameters
    ----------
    specs : list of AnalyzerSpec, optional
        The analyzers (default :func:`default_specs` for ``mode``).
    mode : "wellness" | "driver" | "kiosk"
        Driver mode puts alerts first; kiosk forgets everything when the face is gone ``kiosk_forget_s``.
    agent_factory : callable, optional
        Builds the intervention agent (``suggest(context)``, ``feedback(suggestion, reward)``); None: no agent.
    on_sample : callable, optional
        Called from the agent thread every ``sample_every_s`` with a flat dict of the current numbers (the
        session history recorder); never with frames.
    buffer_frames, buffer_seconds : int, float
        Bounds of the shared frame buffer (analyzers that fall further behind lose frames, counted).
    retry_after_s : float
        How long a failed analyzer waits before it tries again.
    agent_period_s : float
        How often the agent thread looks at the state.
    kiosk_forget_s : float
        Kiosk mode: source seconds without a face after which everything is forgotten.
    tracker_factory : callable
        Builds the face tracker (default: FaceMesh in video mode).
    """

    def __init__(
        self,
        specs: list[AnalyzerSpec] | None = None,
        *,
        mode: str = "wellness",
        agent_factory: Callable[[], Any] | None = None,
        on_sample: Callable[[dict[str, Any]], None] | None = None,
        sample_every_s: float = 5.0,
        buffer_frames: int = 60,
        buffer_seconds: float = 3.0,
        retry_after_s: float = 2.0,
        agent_period_s: float = 1.0,
        kiosk_forget_s: float = 30.0,
        tracker_factory: Callable[[], FaceTracker] | None = None,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        self.mode = mode
        self.specs = list(default_specs(mode) if specs is None else specs)
        names = [s.name for s in self.specs]
        if len(set(names)) != len(names) or {"face", "agent", "engine"} & set(names):
            raise ValueError(f"analyzer names must be unique and not face/agent/engine: {names}")
        self.agent_factory = agent_factory
        self.on_sample = on_sample
        self.sample_every_s = sample_every_s
        self.retry_after_s = retry_after_s
        self.agent_period_s = agent_period_s
        self.kiosk_forget_s = kiosk_forget_s
        self.tracker_factory = tracker_factory or (lambda: FaceTracker(static_image_mode=False))

        self.store = StateStore()
        self.buffer = FrameBuffer(max_frames=buffer_frames, max_seconds=buffer_seconds)
        self.clock = SourceClock()
        self.delivered_fps = RateMeter()
        self.tracked_fps = RateMeter()
        self.frames_submitted = 0
        self.frames_dropped = 0  # submitted frames the face thread never saw (it was busy)
        self.frames_lost: dict[str, int] = {}  # per analyzer: tracked frames it fell too far behind to read

        self._inbox: FramePacket | None = None
        self._skipped: list[FramePacket] = []  # replaced in the inbox before the tracker took them (oldest first)
        self._keep_skipped = any(spec.every_frame and spec.rate_hz is None for spec in self.specs)
        self._inbox_cond = threading.Condition()
        self._overlay: Overlay | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._lock = threading.Lock()
        self._generation = 0  # bumped by forget(); analyzer threads reset when it changes
        self._session_start_wall = time.time()
        self._last_face_t: float | None = None
        self._last_source_t: float | None = None
        self._hr_baseline: list[float] = []
        self._agent: Any = None
        self._suggestion: Any = None
        self._agent_lock = threading.Lock()  # the agent thread and the UI's feedback both touch the suggestion
        self._last_sample_wall = 0.0

    # --- life cycle ---------------------------------------------------------------------------------------------

    def start(self) -> Engine:
        """Start the threads (idempotent)."""
        with self._lock:
            if self._started:
                return self
            self._started = True
            self.store.set_starting("face")
            for spec in self.specs:
                self.store.set_starting(spec.name)
                self.frames_lost[spec.name] = 0
            self._spawn("face", self._face_loop)
            for spec in self.specs:
                self._spawn(spec.name, self._analyzer_loop, spec)
            if self.agent_factory is not None or self.on_sample is not None:
                self.store.set_starting("agent")
                self._spawn("agent", self._agent_loop)
        return self

    def _spawn(self, name: str, target: Callable, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=f"smartmirror-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop every thread and wait for them (at most ``timeout_s`` in all)."""
        self._stop.set()
        self.buffer.close()
        with self._inbox_cond:
            self._inbox_cond.notify_all()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("engine threads still running after stop: %s", alive)

    @property
    def running(self) -> bool:
        return self._started and not self._stop.is_set()

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the producer side (the video callback) -----------------------------------------------------------------

    def submit(self, packet: FramePacket) -> float:
        """Hand one frame to the engine without waiting; returns its (normalised) source time in seconds.

        If the face thread has not taken the previous frame yet, that frame is dropped (the newest wins).
        """
        t = self.clock(packet.t)
        if t != packet.t:
            packet = FramePacket(t=t, image=packet.image, index=packet.index)
        self.delivered_fps.tick()
        with self._inbox_cond:
            if self._inbox is not None:
                self.frames_dropped += 1
                if self._keep_skipped:
                    self._skipped.append(self._inbox)
                    del self._skipped[:-MAX_SKIPPED_FRAMES]
            self._inbox = packet
            self.frames_submitted += 1
            self._inbox_cond.notify()
        return t

    def overlay(self) -> Overlay | None:
        """The newest face overlay (or None before the first tracked frame)."""
        return self._overlay

    # --- threads ------------------------------------------------------------------------------------------------

    def _face_loop(self) -> None:
        tracker = None
        failures = 0
        previous_face: tuple[float, FaceObservation] | None = None  # (t, face) of the last tracked frame
        while not self._stop.is_set():
            with self._inbox_cond:
                while self._inbox is None and not self._stop.is_set():
                    self._inbox_cond.wait(0.5)
                packet, self._inbox = self._inbox, None
                skipped, self._skipped = self._skipped, []
            if packet is None:
                continue
            try:
                if tracker is None:
                    log.info("first frame received (%dx%d, t=%.3f s)", packet.image.shape[1], packet.image.shape[0],
                             packet.t)
                    started = time.monotonic()
                    tracker = self.tracker_factory()
                    face = tracker.process(packet.image)
                    log.info("face tracker ready in %.1f s (face %s)", time.monotonic() - started,
                             "found" if face is not None else "not found")
                else:
                    face = tracker.process(packet.image)
                failures = 0
            except Exception as error:  # noqa: BLE001 - shown as unavailable, the stream keeps running
                failures += 1
                if failures == 1:
                    log.exception("face tracker failed")
                self.store.mark_unavailable("face", _error_text(error))
                face = None
                if failures > 3:
                    time.sleep(self.retry_after_s)
                continue
            for older in skipped:  # before the tracked frame: the buffer stays in time order
                between = None if face is None else between_faces(older.t, previous_face, (packet.t, face))
                self.buffer.push(TrackedPacket(t=older.t, image=older.image, index=older.index, face=between,
                                               reused_face=True))
            previous_face = None if face is None else (packet.t, face)
            self._after_tracking(packet, face)
        if tracker is not None:
            try:
                tracker.close()
            except Exception:  # noqa: BLE001
                log.debug("tracker close failed", exc_info=True)

    def _after_tracking(self, packet: FramePacket, face: FaceObservation | None) -> None:
        tracked = TrackedPacket(t=packet.t, image=packet.image, index=packet.index, face=face)
        self.buffer.push(tracked)
        self.tracked_fps.tick()
        height, width = packet.image.shape[:2]
        if face is not None:
            regions = {name: face.region_polygon(name) for name in ("forehead", "left_cheek", "right_cheek")}
            self._overlay = Overlay(face.landmarks_px[:, :2].copy(), regions, packet.t, (height, width))
            self._last_face_t = packet.t
        else:
            self._overlay = Overlay(None, {}, packet.t, (height, width))
        self._last_source_t = packet.t
        choice = choose_face(face)
        self.store.put(
            "face",
            {
                "face_present": face is not None,
                "num_faces": choice.faces_seen,
                "faces_seen": choice.faces_seen,
                "warning": choice.warning,   # several faces: the largest is measured, and the user is told
                "presence_score": None if face is None else round(face.presence_score, 3),
                "yaw_deg": None if face is None else round(face.yaw_deg, 1),
                "pitch_deg": None if face is None else round(face.pitch_deg, 1),
                "roll_deg": None if face is None else round(face.roll_deg, 1),
                "delivered_fps": round(self.delivered_fps.rate(), 1),
                "tracked_fps": round(self.tracked_fps.rate(), 1),
                "frame_width": width,
                "frame_height": height,
            },
            source_t=packet.t,
        )
        if (
            self.mode == "kiosk"
            and self._last_face_t is not None
            and packet.t - self._last_face_t >= self.kiosk_forget_s
        ):
            log.info("kiosk: no face for %.0f s, forgetting everything", packet.t - self._last_face_t)
            self.forget()

    def _analyzer_loop(self, spec: AnalyzerSpec) -> None:
        analyzer = None
        keywords: list[str] = []
        generation = -1
        last_seq = 0
        failures = 0
        next_try = 0.0
        period = None if spec.rate_hz is None else 1.0 / spec.rate_hz
        next_due = 0.0
        while not self._stop.is_set():
            if analyzer is None:
                if time.monotonic() < next_try:
                    self._stop.wait(min(0.5, next_try - time.monotonic()))
                    continue
                try:
                    started = time.monotonic()
                    analyzer = spec.factory()
                    analyzer.reset()
                    log.info("analyzer %s ready in %.1f s", spec.name, time.monotonic() - started)
                    generation = self._generation
                    keywords = [kw for kw, _ in spec.inputs if _accepts(analyzer.update, kw)]
                except Exception as error:  # noqa: BLE001 - shown as unavailable, others keep running
                    log.warning("analyzer %s could not start: %s", spec.name, _error_text(error))
                    self.store.mark_unavailable(spec.name, _error_text(error))
                    analyzer = None
                    next_try = time.monotonic() + max(self.retry_after_s, 30.0)
                    continue
            if generation != self._generation:  # kiosk forget: a new person
                analyzer.reset()
                generation = self._generation
            if period is None:
                if not self.buffer.wait_for_newer(last_seq, timeout=0.5):
                    continue
                batch = self.buffer.since(last_seq)
                if batch and last_seq and batch[0][0] > last_seq + 1:
                    self.frames_lost[spec.name] += batch[0][0] - last_seq - 1
            else:
                now = time.monotonic()
                if now < next_due:
                    self._stop.wait(next_due - now)
                    continue
                next_due = now + period
                seq = self.buffer.sequence
                if seq <= last_seq:
                    continue
                batch = self.buffer.since(seq - 1)[-1:]
            if not batch:
                continue
            kwargs = {kw: self.store.state(name) for kw, name in spec.inputs if kw in keywords}
            state = None
            packet = None
            try:
                for seq, packet in batch:
                    last_seq = seq
                    if packet.reused_face and not spec.every_frame:
                        continue
                    state = analyzer.update(packet, packet.face, **kwargs)
                failures = 0
            except Exception as error:  # noqa: BLE001 - shown as unavailable, others keep running
                last_seq = batch[-1][0]
                failures += 1
                if failures == 1:
                    log.exception("analyzer %s failed", spec.name)
                elif failures % 100 == 0:
                    log.warning("analyzer %s failed %d times in a row: %s", spec.name, failures, error)
                self.store.mark_unavailable(spec.name, _error_text(error))
                self._stop.wait(self.retry_after_s)
                continue
            if generation != self._generation:
                continue  # forgotten while this batch ran
            if state is not None:
                self.store.put(spec.name, state, source_t=packet.t)

    # --- the agent and the session -------------------------------------------------------------------------------

    def context(self, now: float | None = None) -> dict[str, Any]:
        """The agent's context (DESIGN.md keys) from the latest states; missing values are left out."""
        now = time.time() if now is None else now
        face = self.store.state("face") or {}
        fatigue = self.store.state("fatigue") or {}
        emotion = self.store.state("emotion") or {}
        vitals = self.store.state("vitals") or {}
        context: dict[str, Any] = {
            "mode": self.mode,
            "face_present": bool(face.get("face_present", False)),
            "now": now,
            "minutes_in_session": max(0.0, (now - self._session_start_wall) / 60.0),
            "hour_of_day": _local_hour(now),
            "microsleep": bool(fatigue.get("microsleep", False)),
        }
        _put_number(context, "drowsiness_probability", fatigue.get("drowsiness_probability"), 0.0, 1.0)
        _put_number(context, "perclos", fatigue.get("perclos"), 0.0, 1.0)
        _put_number(context, "stress_score", stress_score(vitals), 0.0, 100.0)
        _put_number(context, "emotion_valence", emotion.get("valence"), -1.0, 1.0)
        _put_number(context, "emotion_arousal", emotion.get("arousal"), -1.0, 1.0)
        heart_rate = _number(vitals.get("heart_rate_bpm"))
        if heart_rate is not None:
            if len(self._hr_baseline) < 30:
                self._hr_baseline.append(heart_rate)
            context["heart_rate_delta_bpm"] = heart_rate - float(np.median(self._hr_baseline))
        return context

    def _agent_loop(self) -> None:
        agent_failures = 0
        while not self._stop.wait(self.agent_period_s):
            now = time.time()
            context = self.context(now)
            if self.agent_factory is not None:
                try:
                    with self._agent_lock:
                        if self._agent is None:
                            self._agent = self.agent_factory()
                        suggestion = self._agent.suggest(context)
                        if suggestion is not None:
                            self._suggestion = suggestion
                        self.store.put("agent", self._agent_state(), source_t=self._last_source_t)
                    agent_failures = 0
                except Exception as error:  # noqa: BLE001 - the mirror keeps running without suggestions
                    agent_failures += 1
                    if agent_failures == 1:
                        log.exception("agent failed")
                    self.store.mark_unavailable("agent", _error_text(error))
            if self.on_sample is not None and now - self._last_sample_wall >= self.sample_every_s:
                self._last_sample_wall = now
                sample = self.sample(now)
                if sample.get("face_present"):
                    try:
                        self.on_sample(sample)
                    except Exception:  # noqa: BLE001 - history is best-effort
                        log.exception("history sample could not be recorded")

    def _agent_state(self) -> dict[str, Any]:
        suggestion = self._suggestion
        if suggestion is None:
            return {"suggestion": None}
        return {
            "suggestion": {
                "id": suggestion.id,
                "action": suggestion.action,
                "title": getattr(suggestion, "title", suggestion.action),
                "message": getattr(suggestion, "message", ""),
                "source": getattr(suggestion, "source", ""),
                "created_at_s": getattr(suggestion, "created_at_s", None),
            }
        }

    def feedback(self, suggestion_id: str, reward: float) -> bool:
        """Pass the user's answer (reward 0..1) for the current suggestion to the agent.

        Returns False when ``suggestion_id`` is not the current suggestion (already answered or replaced).
        """
        with self._agent_lock:
            suggestion = self._suggestion
            if suggestion is None or suggestion.id != suggestion_id or self._agent is None:
                return False
            self._agent.feedback(suggestion, reward, now=time.time())
            self._suggestion = None
            self.store.put("agent", self._agent_state(), source_t=self._last_source_t)
            return True

    @property
    def agent(self) -> Any:
        """The agent (None until the agent thread built it)."""
        return self._agent

    def sample(self, now: float | None = None) -> dict[str, Any]:
        """A flat dict of the current numbers, for the session history (no images)."""
        now = time.time() if now is None else now
        vitals = self.store.state("vitals") or {}
        fatigue = self.store.state("fatigue") or {}
        emotion = self.store.state("emotion") or {}
        face = self.store.state("face") or {}
        return {
            "t_wall": now,
            "mode": self.mode,
            "face_present": bool(face.get("face_present", False)),
            "heart_rate_bpm": _number(vitals.get("heart_rate_bpm")),
            "stress_score": stress_score(vitals),
            "drowsiness_probability": _number(fatigue.get("drowsiness_probability")),
            "perclos": _number(fatigue.get("perclos")),
            "blinks_per_min": _number(fatigue.get("blinks_per_min")),
            "emotion_label": emotion.get("label") if isinstance(emotion.get("label"), str) else None,
            "emotion_valence": _number(emotion.get("valence")),
            "emotion_arousal": _number(emotion.get("arousal")),
        }

    def forget(self) -> None:
        """Forget the person: analyzer states (reset on their threads), the store, the agent, the session clock."""
        self._generation += 1
        self.store.clear(keep=("face", *(s.name for s in self.specs)))
        self._hr_baseline = []
        self._session_start_wall = time.time()
        self._last_face_t = None
        with self._agent_lock:
            self._suggestion = None
            if self._agent is not None and hasattr(self._agent, "reset"):
                try:
                    self._agent.reset()
                except Exception:  # noqa: BLE001
                    log.exception("agent reset failed")

    @property
    def generation(self) -> int:
        """How many times :meth:`forget` ran."""
        return self._generation

    def stats(self) -> dict[str, Any]:
        """Frame counters and rates (for the UI and the benchmark)."""
        return {
            "delivered_fps": self.delivered_fps.rate(),
            "tracked_fps": self.tracked_fps.rate(),
            "frames_submitted": self.frames_submitted,
            "frames_dropped": self.frames_dropped,
            "frames_lost": dict(self.frames_lost),
            "buffer_frames": len(self.buffer),
        }


def stress_score(vitals: Mapping[str, Any]) -> float | None:
    """The stress score 0..100 from a vitals state (``stress: {score}`` or ``stress_score``), or None."""
    stress = vitals.get("stress")
    if isinstance(stress, Mapping):
        return _number(stress.get("score"))
    return _number(vitals.get("stress_score"))


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool | str):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _put_number(context: dict[str, Any], key: str, value: Any, low: float, high: float) -> None:
    number = _number(value)
    if number is not None:
        context[key] = min(max(number, low), high)


def _local_hour(now: float) -> float:
    local = time.localtime(now)
    return (local.tm_hour + local.tm_min / 60.0 + local.tm_sec / 3600.0) % 24.0
