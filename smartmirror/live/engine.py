"""The live engine: one face-tracker pass per frame, analyzers on their own threads, a latest-state store.

Data flow::

    submit(packet) --(latest-frame slot)--> face thread --TrackedPacket--> FrameBuffer
                                                                     |--> analyzer threads (vitals, fatigue, ...)
                                                                     |          |  latest state + timestamps
                                                                     v          v
                                                          overlay slot     StateStore <-- agent thread (1 Hz)

- ``submit`` never blocks on a model: it drops the frame the face thread has not taken yet (counted) and returns.
- Every analyzer runs on a named daemon thread (``smartmirror-<name>``) under the rules of
  :mod:`smartmirror.pipeline` (the clip report's and the REST sessions' too), through the same
  :class:`~smartmirror.pipeline.AnalyzerRunner`: ``rate_s=None`` reads every tracked frame in order (vitals and
  fatigue need every frame), a number reads the newest frame when that many source seconds have passed (emotion).
- An analyzer that fails to load or raises is logged (traceback once, then a count) and its store entry is
  marked ``unavailable`` with the reason; the other analyzers and the stream keep running, and it retries after
  ``retry_after_s`` (building again after 30 s).
- The agent thread reads the store once a second, builds the agent's context and keeps the current suggestion in
  the store; :meth:`Engine.feedback` passes the user's answer on.
- Kiosk mode forgets everything (analyzer state, agent state, session) when no face was seen for
  ``kiosk_forget_s`` seconds of source time.

One class for the threads because they share its frame slot, buffer, store and agent lock; its parts live beside
it (``store.py``, ``tracked.py``, ``process.py``, :mod:`smartmirror.pipeline`, :mod:`smartmirror.agent.from_states`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from smartmirror.agent.from_states import HeartRateBaseline, context_from_states, local_hour, sample_from_states
from smartmirror.face import FaceObservation, FaceTracker
from smartmirror.face_choice import choose_face
from smartmirror.face_track import between_faces
from smartmirror.frames import FrameBuffer, FramePacket, SourceClock
from smartmirror.live.store import RateMeter, StateStore
from smartmirror.live.tracked import MAX_SKIPPED_FRAMES, Overlay, TrackedPacket
from smartmirror.modes import MODES
from smartmirror.pipeline import AnalyzerRunner, error_text
from smartmirror.registry import AnalyzerSpec, analyzer_specs

log = logging.getLogger(__name__)

def default_specs(
    mode: str = "wellness", *, identity: bool = False, pulse_method: str | None = None
) -> list[AnalyzerSpec]:
    """The app's analyzers: vitals and fatigue on every frame, emotion five times a second (identity once a
    second when opted in), from :func:`smartmirror.pipeline.analyzer_specs`.

    ``pulse_method`` picks the vitals' pulse extractor (None: the measured default); the app offers only methods
    registered as ``realtime``.
    """
    names = ("vitals", "fatigue", "emotion", "identity") if identity else ("vitals", "fatigue", "emotion")
    return analyzer_specs(names, mode=mode, pulse_method=pulse_method, live=True)


# --- overlay and rates ------------------------------------------------------------------------------------------


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
        self.runners = {spec.name: AnalyzerRunner(spec, retry_after_s=retry_after_s) for spec in self.specs}

        self._inbox: FramePacket | None = None
        self._skipped: list[FramePacket] = []  # replaced in the inbox before the tracker took them (oldest first)
        self._keep_skipped = any(spec.every_frame and spec.rate_s is None for spec in self.specs)
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
        self._hr_baseline = HeartRateBaseline()
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
            packet = dataclasses.replace(packet, t=t)
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

    def _ready_tracker(self) -> FaceTracker | None:
        """The face tracker, built and run once on a blank frame before the camera's first frame (None if that
        fails: the loop tries again on the first frame and reports the error).

        Building MediaPipe's graphs and their first pass take 1-3 s of CPU; done on the first camera frame, they
        starve the browser's capture just as the stream starts (measured on the browser test: the first 3-4 s
        of frames arrived up to 0.6 s out of step with their timestamps, and the first pooled heart rates read
        55-64 instead of 71 bpm)."""
        started = time.monotonic()
        try:
            tracker = self.tracker_factory()
            tracker.process(np.zeros((480, 640, 3), dtype=np.uint8))
        except Exception:  # noqa: BLE001 - retried on the first frame, where a failure is shown
            log.debug("face tracker warm-up failed", exc_info=True)
            return None
        log.info("face tracker ready in %.1f s (before the first frame)", time.monotonic() - started)
        return tracker

    def _face_loop(self) -> None:
        tracker = self._ready_tracker()
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
                self.store.mark_unavailable("face", error_text(error))
                face = None
                if failures > 3:
                    time.sleep(self.retry_after_s)
                continue
            for older in skipped:  # before the tracked frame: the buffer stays in time order
                between = None if face is None else between_faces(older.t, previous_face, (packet.t, face))
                self.buffer.push(TrackedPacket.of(older, between, reused_face=True))
            previous_face = None if face is None else (packet.t, face)
            self._after_tracking(packet, face)
        if tracker is not None:
            try:
                tracker.close()
            except Exception:  # noqa: BLE001
                log.debug("tracker close failed", exc_info=True)

    def _after_tracking(self, packet: FramePacket, face: FaceObservation | None) -> None:
        tracked = TrackedPacket.of(packet, face)
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
        runner = self.runners[spec.name]
        generation = -1
        last_seq = 0
        next_build = 0.0
        while not self._stop.is_set():
            if not runner.available:
                if time.monotonic() < next_build:
                    self._stop.wait(min(0.5, next_build - time.monotonic()))
                    continue
                started = time.monotonic()
                if not runner.retry_start():
                    self.store.mark_unavailable(spec.name, runner.error or "could not start")
                    next_build = time.monotonic() + max(self.retry_after_s, 30.0)
                    continue
                log.info("analyzer %s ready in %.1f s", spec.name, time.monotonic() - started)
                generation = self._generation
            if generation != self._generation:  # kiosk forget: a new person
                runner.forget()
                generation = self._generation
            if not self.buffer.wait_for_newer(last_seq, timeout=0.5):
                continue
            if spec.rate_s is None:
                batch = self.buffer.since(last_seq)
                if batch and last_seq and batch[0][0] > last_seq + 1:
                    self.frames_lost[spec.name] += batch[0][0] - last_seq - 1
            else:
                batch = self.buffer.since(self.buffer.sequence - 1)[-1:]  # the newest frame only
            if not batch:
                continue
            inputs = {name: self.store.state(name) for name in spec.needs}
            state = packet = None
            for seq, packet in batch:
                last_seq = seq
                if (packet.reused_face and not spec.every_frame) or not runner.due(packet.t):
                    continue
                state = runner.step(packet, packet.face, inputs)
                if runner.error is not None:
                    break
            if runner.error is not None:
                self.store.mark_unavailable(spec.name, runner.error)
                continue
            if generation != self._generation:
                continue  # forgotten while this batch ran
            if state is not None:
                self.store.put(spec.name, state, source_t=packet.t)

    # --- the agent and the session -------------------------------------------------------------------------------

    def context(self, now: float | None = None) -> dict[str, Any]:
        """The agent's context (:mod:`smartmirror.agent.context` keys) from the latest states; missing values are
        left out."""
        now = time.time() if now is None else now
        return context_from_states(
            *self._latest_states(), mode=self.mode, now=now,
            minutes_in_session=max(0.0, (now - self._session_start_wall) / 60.0), hour_of_day=local_hour(now),
            heart_rate_baseline=self._hr_baseline,
        )

    def _latest_states(self) -> tuple[Any, Any, Any, Any]:
        """The face entry and the fatigue, emotion and vitals states (None where not measured)."""
        return tuple(self.store.state(name) for name in ("face", "fatigue", "emotion", "vitals"))

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
                    self.store.mark_unavailable("agent", error_text(error))
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
        return sample_from_states(*self._latest_states(), mode=self.mode, now=now)

    def forget(self) -> None:
        """Forget the person: analyzer states (reset on their threads), the store, the agent, the session clock."""
        self._generation += 1
        self.store.clear(keep=("face", *(s.name for s in self.specs)))
        self._hr_baseline.reset()
        self._session_start_wall = time.time()
        self._last_face_t = None
        with self._agent_lock:
            self._suggestion = None
            if self._agent is not None and hasattr(self._agent, "reset"):
                try:
                    self._agent.reset()
                except Exception:  # noqa: BLE001
                    log.exception("agent reset failed")

    def summaries(self) -> dict[str, Any]:
        """Each analyzer's summary over the frames it saw (the clip report's sections); call after :meth:`stop`,
        or when no frames are in flight, since the analyzers' threads update them."""
        return {name: runner.summary() for name, runner in self.runners.items()}

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
