"""One video in, one report out: the pipeline over one face-tracker pass (``smartmirror analyze VIDEO``).

:func:`analyze_video` decodes the clip (in a prefetching thread, so decoding overlaps face tracking on the
second core) and drives :class:`smartmirror.pipeline.Pipeline` over every frame, then assembles the report (keys
in ``docs/report.md``). It raises :class:`smartmirror.frames.VideoError` for a file that cannot be analysed (never
a partial report). Emotion, fatigue and identity sections are None when their analyzer is unavailable or failed
(identity unless asked for); a failing vitals analyzer ends the report with its exception.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from smartmirror.face_track import landmarks_every_for
from smartmirror.frames import FramePacket, Prefetcher, VideoError, read_video_packets
from smartmirror.pipeline import Pipeline
from smartmirror.registry import analyzer_specs

log = logging.getLogger(__name__)

#: Seconds of face video below which no report is made (the first heart-rate window needs them).
MIN_FACE_SECONDS = 6.0
#: The optional sections a report runs by default (identity is opt-in through its own flag).
DEFAULT_SECTIONS = ("emotion", "fatigue")


def _warm_imports() -> None:
    """Import the signal stack in the background while the first frames decode (it takes ~1 s)."""
    import scipy.interpolate  # noqa: F401
    import scipy.signal  # noqa: F401


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
    cancel: threading.Event | None = None, landmarks_every: int | None = None,
) -> dict:
    """The whole report for one clip (keys in ``docs/report.md``; null where not measurable).

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
    landmarks_every : int, optional
        FaceMesh on every this many frames, the landmarks interpolated on the timestamps between
        (:meth:`smartmirror.pipeline.Pipeline.run`): faster, for the vitals alone, and less safe with the
        unsupervised methods (a still photo's encoder flicker passed for a pulse with 2; see
        :data:`smartmirror.face_track.VITALS_LANDMARKS_EVERY`). Default: 1 for those, the measured interval of
        :data:`smartmirror.face_track.LEARNED_LANDMARKS_EVERY` for the learned ones; with emotion, fatigue or
        identity on, always 1.

    Raises
    ------
    VideoError
        ``not_found``, ``empty_file``, ``not_a_video``, ``no_video_stream``, ``corrupt_video``, ``no_frames``,
        ``no_face``, ``too_short`` (under :data:`MIN_FACE_SECONDS` of face video, e.g. a truncated file);
        ``invalid_method`` for an unknown pulse method, ``invalid_sections`` for an unknown section.
    """
    started = time.perf_counter()
    unknown = set(sections) - set(DEFAULT_SECTIONS)
    if unknown:
        raise VideoError("invalid_sections",
                         f"unknown report sections {sorted(unknown)}; choose from {list(DEFAULT_SECTIONS)}")
    names = ["vitals", *(name for name in ("fatigue", "emotion") if name in sections)]
    if identity:
        names.append("identity")
    # a streamable learned pulse runs beside the tracking thread, not after it (stream_pulse)
    pipeline = Pipeline(analyzer_specs(names, pulse_method=method, live=False, stream_pulse=True))
    vitals = pipeline.runners["vitals"]
    if not vitals.start():
        if isinstance(vitals.exception, ValueError):
            raise VideoError("invalid_method", str(vitals.exception)) from None
        raise vitals.exception or RuntimeError(vitals.error)
    # FaceMesh as often as these analyzers and the pulse method need it, the landmarks interpolated between
    pipeline.landmarks_every = landmarks_every_for(names, vitals.analyzer.method_.name, landmarks_every)
    packets = read_video_packets(path)  # a generator: the first checks run on the first next()
    if max_side_px is not None:
        packets = _downscaled(packets, max_side_px)
    warm = threading.Thread(target=_warm_imports, name="report-imports", daemon=True)
    warm.start()
    pipeline.start()
    prefetch = Prefetcher(packets)
    with pipeline:
        with contextlib.closing(pipeline.run(prefetch, overlap=True)) as results:  # tracking on its own thread
            for _ in results:
                if cancel is not None and cancel.is_set():
                    raise VideoError("cancelled", f"The analysis of {Path(path).name} was stopped")
                if vitals.exception is not None:
                    raise vitals.exception
        if pipeline.frames == 0:
            raise VideoError("no_frames", f"{Path(path).name} contains no decodable video frames")
        if pipeline.frames_with_face == 0:
            raise VideoError("no_face", f"No face found in any of the {pipeline.frames} frames of "
                                        f"{Path(path).name}: record the face from the front, in good light.")
        if pipeline.face_seen_s < MIN_FACE_SECONDS:
            raise VideoError("too_short", f"{Path(path).name} shows a face for only {pipeline.face_seen_s:.1f} s; "
                                          f"the vitals need at least {MIN_FACE_SECONDS:.0f} s (15 s is best).")
        warm.join()
        summaries = pipeline.summaries()
        seconds = pipeline.seconds
        faces = pipeline.faces.summary()
        frames = pipeline.frames
    vitals_report = dict(summaries["vitals"] or {})
    quality = vitals_report.pop("quality", None)
    report: dict[str, Any] = {
        "heart_rate_bpm": vitals_report.pop("heart_rate_bpm", None),
        "heart_rate_confidence": vitals_report.pop("heart_rate_confidence", None),
        "pulse_snr_db": vitals_report.pop("pulse_snr_db", None),
        "hrv": vitals_report.pop("hrv", None),
        "respiration_rate_bpm": vitals_report.pop("respiration_rate_bpm", None),
        "spo2_percent": vitals_report.pop("spo2_percent", None),
        "stress": vitals_report.pop("stress", None),
        "emotion": summaries.get("emotion"),
        "fatigue": summaries.get("fatigue"),
        "identity": summaries.get("identity"),
        "quality": quality,
        "faces": faces,
    }
    report.update(vitals_report)  # spo2 details, pulse_method
    duration = None
    if quality and quality.get("fps"):
        duration = round(frames / quality["fps"], 2)
    report["video"] = {"name": Path(path).name, "duration_s": duration}
    report["timings_s"] = {
        "decode": round(prefetch.busy_s, 3),
        **{name: round(seconds.get(name, 0.0), 3) for name in ("face", "vitals", "emotion", "fatigue", "identity")},
        "total": round(time.perf_counter() - started, 3),
    }
    return report
