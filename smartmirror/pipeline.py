"""One frame-to-state chain: face tracker, then every analyzer under one set of rules.

The live engine, the REST sessions, the clip report and eval all drive it, so a frame gives the same states
whichever way it came in::

    packet --SourceClock--> face tracker --choose_face--> runner(fatigue) -> runner(emotion, needs fatigue) -> ...
                                                                   |
                                                     FrameResult(face, states, timings)      summaries()

The rules, each in one place:

- **Building:** an analyzer comes from the registry (:func:`smartmirror.registry.analyzer_specs`; heavy
  packages are imported inside the factories, so a missing one only makes that analyzer unavailable) and is
  ``reset()`` once before its first frame (and again by :meth:`AnalyzerRunner.forget`).
- **Rates:** ``rate_s=None`` updates on every frame; a number updates when at least that many *source* seconds
  passed since its last update (emotion 0.2 s, identity 1 s); in between, its latest state stands.
- **Inputs:** ``needs=("fatigue",)`` passes the latest state of that analyzer as ``fatigue_state=``; the
  pipeline orders analyzers so that a needed state is the one of the same frame.
- **Several faces:** :func:`smartmirror.face_choice.choose_face` (the largest is measured, the answer says so).
- **Timestamps:** :class:`smartmirror.frames.SourceClock` makes them strictly increasing seconds.
- **Failures:** an analyzer that raises gives no state for that frame, is counted and its error kept
  (:attr:`AnalyzerRunner.error`), and is tried again ``retry_after_s`` source seconds later; the others go on.
  One that cannot be built is unavailable (state and summary None). Drivers decide what a failure means to
  them: the clip report and eval end with the vitals' exception, the live page shows "unavailable".
- **Timings:** per frame in :attr:`FrameResult.timings_s`, in total in :attr:`Pipeline.seconds`.
- **Offline landmarks at a lower rate:** :meth:`Pipeline.run` with ``landmarks_every=n`` tracks every n-th frame
  and gives the frames between the landmarks interpolated on their timestamps (it sees the next tracked frame
  before analysing them), tracking them too where the face appears, vanishes, moves fast or blinks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from smartmirror.analyzer import Analyzer, State
from smartmirror.face import FaceObservation, FaceTracker
from smartmirror.face_choice import FaceChoice, FacesTally, choose_face
from smartmirror.face_track import MAX_INTERPOLATION_S, between_faces, eye_luma, eyes_changed_between
from smartmirror.frames import FramePacket, Prefetcher, SourceClock
from smartmirror.registry import AnalyzerSpec, ordered

log = logging.getLogger(__name__)

#: Source seconds a failed analyzer waits before it is tried again.
RETRY_AFTER_S = 2.0
#: Rounding slack of rates on the source clock (six frames at 1/30 s are 0.2 s, not 0.19999...).
_CLOCK_SLACK_S = 1e-6
#: Between two tracked frames of :meth:`Pipeline.run`, the frames are tracked too (not interpolated) when the face's
#: landmarks moved further than this share of the inter-ocular distance (median over the landmarks).
MAX_INTERPOLATED_MOTION = 0.25


@dataclass(frozen=True)
class _Tracked:
    """A frame :meth:`Pipeline.tracked` gave to the tracker: its time (s), face and eye luma (None without a face)."""

    t: float
    choice: FaceChoice
    eye_luma: np.ndarray | None


def error_text(error: BaseException) -> str:
    """``Type: message``, at most 300 characters (shown as an analyzer's reason for being unavailable)."""
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= 300 else text[:297] + "..."


class AnalyzerRunner:
    """One analyzer under the pipeline's rules (see the module docstring); not thread-safe, one caller at a time.

    Attributes
    ----------
    analyzer : Analyzer or None
        None until :meth:`start`, and when it could not be built.
    state : State or None
        Its latest state.
    error : str or None
        The last failure (building or updating), None after a good update.
    failures : int
        Updates that raised, in a row.
    seconds : float
        Time spent in ``update`` and ``summary``.
    exception : BaseException or None
        Why it could not be built, or the first exception an update raised (drivers that must not lose a
        failure re-raise it).
    """

    def __init__(self, spec: AnalyzerSpec, *, retry_after_s: float = RETRY_AFTER_S):
        self.spec = spec
        self.retry_after_s = retry_after_s
        self.analyzer: Analyzer | None = None
        self.state: State | None = None
        self.error: str | None = None
        self.failures = 0
        self.updates = 0
        self.seconds = 0.0
        self.exception: BaseException | None = None
        self._last_t: float | None = None
        self._retry_t: float | None = None
        self._started = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def available(self) -> bool:
        """Built and reset (False before :meth:`start` and when building failed)."""
        return self.analyzer is not None

    def start(self) -> bool:
        """Build the analyzer and reset it (once); False when it cannot be built (``error`` says why)."""
        if self._started:
            return self.analyzer is not None
        self._started = True
        try:
            analyzer = self.spec.factory()
            analyzer.reset()
        except Exception as exc:  # noqa: BLE001 - unavailable, the other analyzers go on
            log.warning("analyzer %s is unavailable: %s", self.name, error_text(exc))
            self.error = error_text(exc)
            self.exception = exc
            return False
        self.analyzer = analyzer
        return True

    def retry_start(self) -> bool:
        """Try building again after a failed :meth:`start` (the live engine does, every 30 s)."""
        self._started = False
        return self.start()

    def due(self, t: float) -> bool:
        """Whether a frame at source time ``t`` should update this analyzer (its rate, a pending retry)."""
        if self._retry_t is not None and t < self._retry_t:
            return False
        rate = self.spec.rate_s
        return rate is None or self._last_t is None or t - self._last_t >= rate - _CLOCK_SLACK_S

    def step(self, packet: FramePacket, face: FaceObservation | None,
             inputs: Mapping[str, State | None] | None = None) -> State | None:
        """Update on one frame (the caller checked :meth:`due`); returns the new state, None on a failure."""
        if not self.start():
            return None
        assert self.analyzer is not None
        self._last_t = packet.t
        kwargs = {f"{name}_state": (inputs or {}).get(name) for name in self.spec.needs}
        started = time.perf_counter()
        try:
            state = self.analyzer.update(packet, face, **kwargs)
        except Exception as exc:  # noqa: BLE001 - counted and retried, the other analyzers go on
            self.failures += 1
            self.error = error_text(exc)
            self.exception = self.exception or exc
            self._retry_t = packet.t + self.retry_after_s
            if self.failures == 1:
                log.warning("analyzer %s failed on frame %d", self.name, packet.index, exc_info=True)
            elif self.failures % 100 == 0:
                log.warning("analyzer %s failed %d times in a row: %s", self.name, self.failures, exc)
            return None
        finally:
            self.seconds += time.perf_counter() - started
        self.failures = 0
        self.error = None
        self._retry_t = None
        self.updates += 1
        self.state = state
        return state

    def forget(self) -> None:
        """A new person: the analyzer's ``reset()``, its latest state and its schedule."""
        self.state = None
        self._last_t = self._retry_t = None
        if self.analyzer is not None:
            self.analyzer.reset()

    def close(self) -> None:
        """Release what the analyzer holds (its optional ``close()``: the vitals' face-crop detector, say); the
        runner is unavailable afterwards. A failing ``close()`` is logged, not raised."""
        analyzer, self.analyzer = self.analyzer, None
        release = getattr(analyzer, "close", None)
        if callable(release):
            try:
                release()
            except Exception as exc:  # noqa: BLE001 - closing must not fail the caller's shutdown
                log.warning("analyzer %s close failed: %s", self.name, error_text(exc))

    def summary(self) -> State | None:
        """The analyzer's clip-level summary (None when unavailable, never updated, or its summary raised)."""
        if self.analyzer is None or self.updates == 0:
            return None
        started = time.perf_counter()
        try:
            return self.analyzer.summary()
        except Exception as exc:  # noqa: BLE001
            log.warning("analyzer %s summary failed: %s", self.name, error_text(exc))
            self.error = error_text(exc)
            return None
        finally:
            self.seconds += time.perf_counter() - started


@dataclass
class FrameResult:
    """One frame through the pipeline."""

    packet: FramePacket                          # with the source-clock time
    choice: FaceChoice                           # the measured face, faces seen, a several-faces warning
    states: dict[str, State | None]              # every analyzer's latest state (updated or standing)
    updated: tuple[str, ...] = ()                # the analyzers this frame updated
    timings_s: dict[str, float] = field(default_factory=dict)  # "face" and each updated analyzer, seconds

    @property
    def t(self) -> float:
        return self.packet.t

    @property
    def face(self) -> FaceObservation | None:
        return self.choice.face


class Pipeline:
    """Face tracker and analyzers, one frame at a time (:meth:`step`), in source-clock order.

    Parameters
    ----------
    specs : iterable of AnalyzerSpec
        The analyzers (see :func:`analyzer_specs`); run in dependency order.
    tracker : FaceTracker, optional
        A face tracker the caller owns (a REST session's). Without one the pipeline builds its own on the first
        frame, with ``tracker_factory`` (default: FaceMesh in video mode), and closes it in :meth:`close`.
    tracker_factory : callable, optional
        Builds the pipeline's own tracker (anything with ``process(image)`` and ``close()``).
    retry_after_s : float
        Source seconds before a failed analyzer is tried again.
    landmarks_every : int
        :meth:`run` tracks every this many frames and interpolates the landmarks between (1: every frame).
        Only for analyzers that read the skin's colour (the vitals), never the face's shape at every frame.
    """

    def __init__(self, specs: Iterable[AnalyzerSpec], *, tracker: FaceTracker | None = None,
                 tracker_factory: Callable[[], FaceTracker] | None = None, retry_after_s: float = RETRY_AFTER_S,
                 landmarks_every: int = 1):
        if landmarks_every < 1:
            raise ValueError(f"landmarks_every must be >= 1, got {landmarks_every!r}")
        self.landmarks_every = int(landmarks_every)
        self.runners = {spec.name: AnalyzerRunner(spec, retry_after_s=retry_after_s) for spec in ordered(specs)}
        self.tracker = tracker
        self._own_tracker = tracker is None
        self._tracker_factory = tracker_factory or (lambda: FaceTracker(static_image_mode=False))
        self.clock = SourceClock()
        self.faces = FacesTally()
        self.frames = 0
        self.frames_with_face = 0
        self.first_face_t: float | None = None
        self.last_face_t: float | None = None
        self.face_seconds = 0.0

    def start(self) -> Pipeline:
        """Build and reset every analyzer now (otherwise on the first frame)."""
        for runner in self.runners.values():
            runner.start()
        return self

    def track(self, packet: FramePacket) -> FaceChoice:
        """The face of one frame under the several-faces rule (counted in :attr:`faces`)."""
        if self.tracker is None:
            self.tracker = self._tracker_factory()
        started = time.perf_counter()
        choice = choose_face(self.tracker.process(packet.image))
        self.face_seconds += time.perf_counter() - started
        self.faces.add(choice)
        return choice

    def step(self, packet: FramePacket) -> FrameResult:
        """Track one frame and update every analyzer that is due."""
        packet = self.timed(packet)
        choice, face_s = self._timed_track(packet)
        result = self.analyze(packet, choice)
        result.timings_s["face"] = face_s
        return result

    def run(self, packets: Iterable[FramePacket], *, overlap: bool = False) -> Iterator[FrameResult]:
        """Every frame through the pipeline, in order (as :meth:`step` on each, when ``landmarks_every`` is 1).

        With ``landmarks_every=n`` the tracker sees every n-th frame; the frames between are analysed once the
        next tracked frame is known, with the landmarks interpolated linearly on their timestamps
        (:func:`smartmirror.face_track.between_faces`). They are tracked as well instead when the face is missing
        at either end, the two are over :data:`smartmirror.face_track.MAX_INTERPOLATION_S` apart, the face
        moved more than :data:`MAX_INTERPOLATED_MOTION` inter-ocular distances, or the eyes may have blinked
        between them (:func:`smartmirror.face_track.eyes_changed_between`: their openness changed, or an eye's
        luma on a frame between left the line between the two). Results come up to n - 1 frames late.

        ``overlap=True`` runs the face tracker on a thread of its own, a few frames ahead of the analyzers (which
        run in the caller's thread), so tracking and analysis use two cores.
        """
        stream = self.tracked(packets)
        if overlap:
            stream = Prefetcher(stream, name="pipeline-track")
        try:
            for packet, choice, face_s in stream:
                result = self.analyze(packet, choice)
                result.timings_s["face"] = face_s
                yield result
        finally:
            if overlap:
                stream.close()

    def tracked(self, packets: Iterable[FramePacket]) -> Iterator[tuple[FramePacket, FaceChoice, float]]:
        """(packet on the source clock, its face, seconds its tracking took) for every frame, in order, under the
        ``landmarks_every`` rule of :meth:`run`."""
        if self.landmarks_every == 1:
            for packet in packets:
                packet = self.timed(packet)
                yield packet, *self._timed_track(packet)
            return
        before: _Tracked | None = None
        pending: list[FramePacket] = []
        for packet in packets:
            packet = self.timed(packet)
            if before is not None and len(pending) < self.landmarks_every - 1:
                pending.append(packet)
                continue
            choice, face_s = self._timed_track(packet)
            after = _Tracked(packet.t, choice, None if choice.face is None
                             else eye_luma(packet.image, choice.face.landmarks_px))
            yield from self._between(before, after, pending)
            pending = []
            yield packet, choice, face_s
            before = after
        for packet in pending:  # the clip ended between tracked frames
            yield packet, *self._timed_track(packet)

    def _timed_track(self, packet: FramePacket) -> tuple[FaceChoice, float]:
        started = time.perf_counter()
        choice = self.track(packet)
        return choice, time.perf_counter() - started

    def _between(self, before: _Tracked | None, after: _Tracked, pending: list[FramePacket]
                 ) -> Iterator[tuple[FramePacket, FaceChoice, float]]:
        """The frames between two tracked ones: interpolated faces, or tracked where interpolation is unsafe."""
        if not pending:
            return
        first, last = (None, None) if before is None else (before.choice.face, after.choice.face)
        smooth = first is not None and last is not None and after.t - before.t <= MAX_INTERPOLATION_S \
            and first.landmarks_px.shape == last.landmarks_px.shape
        if smooth:
            moved = np.linalg.norm(last.landmarks_px[:, :2] - first.landmarks_px[:, :2], axis=1)
            scale = max(first.inter_ocular_px, last.inter_ocular_px, 1.0)
            smooth = float(np.median(moved)) <= MAX_INTERPOLATED_MOTION * scale
        faces = []
        if smooth:
            faces = [between_faces(packet.t, (before.t, first), (after.t, last)) for packet in pending]
            lumas = [((packet.t - before.t) / (after.t - before.t), eye_luma(packet.image, face.landmarks_px))
                     for packet, face in zip(pending, faces, strict=True)]
            smooth = not eyes_changed_between(first, last, before.eye_luma, after.eye_luma, lumas)
        if not smooth:
            for packet in pending:
                yield packet, *self._timed_track(packet)
            return
        for packet, face in zip(pending, faces, strict=True):
            choice = FaceChoice(face, after.choice.faces_seen, after.choice.warning)
            self.faces.add(choice)
            yield packet, choice, 0.0

    def timed(self, packet: FramePacket) -> FramePacket:
        """The packet on the source clock (strictly increasing seconds)."""
        t = self.clock(packet.t)
        return packet if t == packet.t else replace(packet, t=t)

    def analyze(self, packet: FramePacket, choice: FaceChoice) -> FrameResult:
        """Update the due analyzers with an already tracked frame (``packet`` already on the source clock)."""
        self.frames += 1
        if choice.face is not None:
            self.frames_with_face += 1
            self.first_face_t = packet.t if self.first_face_t is None else self.first_face_t
            self.last_face_t = packet.t
        states: dict[str, State | None] = {}
        updated = []
        timings: dict[str, float] = {}
        for name, runner in self.runners.items():
            if runner.due(packet.t):
                started = time.perf_counter()
                runner.step(packet, choice.face, states)
                timings[name] = time.perf_counter() - started
                updated.append(name)
            states[name] = runner.state
        return FrameResult(packet, choice, states, tuple(updated), timings)

    @property
    def face_seen_s(self) -> float:
        """Source seconds from the first to the last frame with a face."""
        if self.first_face_t is None or self.last_face_t is None:
            return 0.0
        return self.last_face_t - self.first_face_t

    def summaries(self) -> dict[str, State | None]:
        """Each analyzer's clip-level summary over the frames so far."""
        return {name: runner.summary() for name, runner in self.runners.items()}

    @property
    def seconds(self) -> dict[str, float]:
        """Seconds spent so far: ``face`` and each analyzer."""
        return {"face": self.face_seconds, **{name: r.seconds for name, r in self.runners.items()}}

    def forget(self) -> None:
        """A new person: every analyzer reset, the face counts cleared."""
        for runner in self.runners.values():
            runner.forget()
        self.faces = FacesTally()
        self.first_face_t = self.last_face_t = None

    def close(self) -> None:
        """Release the face tracker (when the pipeline built it) and the analyzers."""
        if self._own_tracker and self.tracker is not None:
            self.tracker.close()
            self.tracker = None
        for runner in self.runners.values():
            runner.close()
        self.runners = {}

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
