"""One video in, one report out: every analyzer over one face-tracker pass (``smartmirror analyze VIDEO``).

:func:`analyze_video` decodes the clip (in a prefetching thread, so decoding overlaps face tracking on the
second core), runs FaceMesh once per frame, feeds every analyzer, and assembles the DESIGN.md report. It
raises :class:`smartmirror.frames.VideoError` for a file that cannot be analysed (never a partial report);
:func:`error_object` is the JSON shape of such a failure. Emotion, fatigue and identity sections are None when
their package is missing (and identity unless asked for).
"""

from __future__ import annotations

import importlib
import logging
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from smartmirror.face_choice import FacesTally, choose_face
from smartmirror.frames import FramePacket, VideoError, read_video_packets

log = logging.getLogger(__name__)

#: Frames decoded ahead of the face tracker.
PREFETCH_FRAMES = 16
#: Seconds of face video below which no report is made (the first heart-rate window needs them).
MIN_FACE_SECONDS = 6.0


def error_object(code: str, message: str) -> dict[str, dict[str, str]]:
    """The report's failure shape: ``{"error": {"code": ..., "message": ...}}``."""
    return {"error": {"code": str(code), "message": str(message)}}


class Prefetcher:
    """Decode in a daemon thread into a bounded queue; the consumer re-raises the decoder's exception."""

    _END = object()

    def __init__(self, packets: Iterator[FramePacket], maxsize: int = PREFETCH_FRAMES):
        self._packets = packets
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._stop = threading.Event()
        self.busy_s = 0.0
        self._thread = threading.Thread(target=self._run, name="report-decode", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            while True:
                start = time.perf_counter()
                try:
                    packet = next(self._packets)
                except StopIteration:
                    break
                finally:
                    self.busy_s += time.perf_counter() - start
                if not self._put(packet):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(exc)
            return
        self._put(self._END)

    def __iter__(self) -> Iterator[FramePacket]:
        try:
            while True:
                item = self._queue.get()
                if item is self._END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._stop.set()


def _warm_imports() -> None:
    """Import the signal stack in the background while the first frames decode (it takes ~1 s)."""
    try:
        import scipy.interpolate  # noqa: F401
        import scipy.signal  # noqa: F401
    except ImportError:  # pragma: no cover - scipy is a hard dependency
        pass


def _optional_analyzer(module: str, cls: str, **kwargs: Any) -> Any | None:
    """An analyzer from another part of SmartMirror, or None when it is missing or cannot start."""
    try:
        return getattr(importlib.import_module(module), cls)(**kwargs)
    except (ImportError, AttributeError) as exc:
        log.info("%s.%s unavailable: %s", module, cls, exc)
    except (FileNotFoundError, OSError, RuntimeError, ValueError) as exc:
        log.warning("%s.%s could not start: %s", module, cls, exc)
    return None


class _Section:
    """One optional analyzer with its timing; failures switch it off with a warning, never end the report."""

    def __init__(self, name: str, analyzer: Any | None):
        self.name = name
        self.analyzer = analyzer
        self.seconds = 0.0
        self.failed = False

    def update(self, packet: FramePacket, face: Any, **extra: Any) -> Any:
        if self.analyzer is None or self.failed:
            return None
        start = time.perf_counter()
        try:
            return self.analyzer.update(packet, face, **extra)
        except Exception as exc:  # an optional section must not take the vitals report down
            log.warning("%s analyzer failed on frame %d: %s", self.name, packet.index, exc)
            self.failed = True
            return None
        finally:
            self.seconds += time.perf_counter() - start

    def summary(self) -> dict | None:
        if self.analyzer is None or self.failed:
            return None
        start = time.perf_counter()
        try:
            return self.analyzer.summary()
        except Exception as exc:
            log.warning("%s analyzer summary failed: %s", self.name, exc)
            return None
        finally:
            self.seconds += time.perf_counter() - start


#: The optional sections a report runs by default (identity is opt-in through its own flag).
DEFAULT_SECTIONS = ("emotion", "fatigue")


def _downscaled(packets: Iterator[FramePacket], max_side_px: int) -> Iterator[FramePacket]:
    """Frames larger than ``max_side_px`` a side, shrunk (area interpolation keeps the skin's mean colour)."""
    import cv2

    for packet in packets:
        height, width = packet.image.shape[:2]
        scale = max_side_px / max(height, width)
        if scale < 1:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            packet = FramePacket(t=packet.t, image=cv2.resize(packet.image, size, interpolation=cv2.INTER_AREA),
                                 index=packet.index)
        yield packet


def analyze_video(
    path: str | Path, *, method: str | None = None, identity: bool = False,
    sections: tuple[str, ...] = DEFAULT_SECTIONS, max_side_px: int | None = None,
    cancel: threading.Event | None = None,
) -> dict:
    """The whole report for one clip (keys as in DESIGN.md; null where not measurable).

    Parameters
    ----------
    path : str or Path
        The video file.
    method : str, optional
        Pulse method (see :func:`smartmirror.vitals.methods.list_methods`); default the measured best.
    identity : bool
        Also estimate age and gender (opt-in).
    sections : tuple of str
        Which of "emotion" and "fatigue" to run (the others are reported as None); vitals always run.
    max_side_px : int, optional
        Downscale larger frames to this many pixels a side before tracking (the REST API bounds its work so).
    cancel : threading.Event, optional
        When set, the analysis stops at the next frame with ``VideoError("cancelled")``.

    Raises
    ------
    VideoError
        ``not_found``, ``empty_file``, ``not_a_video``, ``no_video_stream``, ``corrupt_video``, ``no_frames``,
        ``no_face``, ``too_short`` (under :data:`MIN_FACE_SECONDS` of face video, e.g. a truncated file);
        ``invalid_method`` for an unknown pulse method, ``invalid_sections`` for an unknown section.
    """
    from smartmirror.face_track import tracker_for
    from smartmirror.vitals.analyzer import VitalsAnalyzer
    from smartmirror.vitals.rppg import DEFAULT_METHOD

    started = time.perf_counter()
    try:
        vitals = VitalsAnalyzer(method=method or DEFAULT_METHOD, live=False)
    except ValueError as exc:
        raise VideoError("invalid_method", str(exc)) from None
    packets = read_video_packets(path)  # a generator: the first checks run on the first next()
    if max_side_px is not None:
        packets = _downscaled(packets, max_side_px)
    warm = threading.Thread(target=_warm_imports, name="report-imports", daemon=True)
    warm.start()
    unknown = set(sections) - set(DEFAULT_SECTIONS)
    if unknown:
        raise VideoError("invalid_sections",
                         f"unknown report sections {sorted(unknown)}; choose from {list(DEFAULT_SECTIONS)}")
    fatigue = _Section("fatigue", _optional_analyzer("smartmirror.fatigue", "FatigueAnalyzer")
                       if "fatigue" in sections else None)
    emotion = _Section("emotion", _optional_analyzer("smartmirror.emotion", "EmotionAnalyzer")
                       if "emotion" in sections else None)
    who = _Section("identity", _optional_analyzer("smartmirror.identity", "IdentityAnalyzer") if identity else None)
    face_s = vitals_s = 0.0
    frames = faces = 0
    first_face_t = last_face_t = None
    prefetch = Prefetcher(packets)
    tally = FacesTally()
    with tracker_for((*sections, *(["identity"] if identity else [])), vitals.method_.name) as tracker:
        for packet in prefetch:
            if cancel is not None and cancel.is_set():
                raise VideoError("cancelled", f"The analysis of {Path(path).name} was stopped")
            frames += 1
            start = time.perf_counter()
            choice = choose_face(tracker.process(packet.image))  # several faces: the largest, flagged
            tally.add(choice)
            face = choice.face
            face_s += time.perf_counter() - start
            if face is not None:
                faces += 1
                first_face_t = packet.t if first_face_t is None else first_face_t
                last_face_t = packet.t
            start = time.perf_counter()
            vitals.update(packet, face)
            vitals_s += time.perf_counter() - start
            fatigue_state = fatigue.update(packet, face)
            emotion.update(packet, face, fatigue_state=fatigue_state)
            who.update(packet, face)
    if frames == 0:
        raise VideoError("no_frames", f"{Path(path).name} contains no decodable video frames")
    if faces == 0:
        raise VideoError("no_face", f"No face found in any of the {frames} frames of {Path(path).name}: "
                                    "record the face from the front, in good light.")
    if last_face_t - first_face_t < MIN_FACE_SECONDS:
        raise VideoError("too_short", f"{Path(path).name} shows a face for only {last_face_t - first_face_t:.1f} s; "
                                      f"the vitals need at least {MIN_FACE_SECONDS:.0f} s (15 s is best).")
    warm.join()
    start = time.perf_counter()
    vitals_report = vitals.summary() or {}
    vitals_s += time.perf_counter() - start
    quality = vitals_report.pop("quality", None)
    report: dict[str, Any] = {
        "heart_rate_bpm": vitals_report.pop("heart_rate_bpm", None),
        "heart_rate_confidence": vitals_report.pop("heart_rate_confidence", None),
        "pulse_snr_db": vitals_report.pop("pulse_snr_db", None),
        "hrv": vitals_report.pop("hrv", None),
        "respiration_rate_bpm": vitals_report.pop("respiration_rate_bpm", None),
        "spo2_percent": vitals_report.pop("spo2_percent", None),
        "stress": vitals_report.pop("stress", None),
        "emotion": emotion.summary(),
        "fatigue": fatigue.summary(),
        "identity": who.summary(),
        "quality": quality,
        "faces": tally.summary(),
    }
    report.update(vitals_report)  # spo2 details, pulse_method
    duration = None
    if quality and quality.get("fps"):
        duration = round(frames / quality["fps"], 2)
    report["video"] = {"name": Path(path).name, "duration_s": duration}
    report["timings_s"] = {
        "decode": round(prefetch.busy_s, 3),
        "face": round(face_s, 3),
        "vitals": round(vitals_s, 3),
        "emotion": round(emotion.seconds, 3),
        "fatigue": round(fatigue.seconds, 3),
        "identity": round(who.seconds, 3),
        "total": round(time.perf_counter() - started, 3),
    }
    return report
