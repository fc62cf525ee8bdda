"""Video files to vitals traces, and the two-call pulse API's ``extract_rppg_signal(video_path) -> (times, signal)``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from smartmirror.frames import Prefetcher, VideoError, read_video_packets
from smartmirror.pipeline import Pipeline
from smartmirror.registry import AnalyzerSpec, vitals_spec
from smartmirror.vitals.pipeline import VitalsTrace, build_segments
from smartmirror.vitals.rppg import DEFAULT_METHOD, PULSE_BAND_HZ
from smartmirror.vitals.signal import GRID_RATE_HZ, bandpass

if TYPE_CHECKING:
    from smartmirror.face import FaceTracker
    from smartmirror.face_track import FlowFaceTracker


def _crop_key(method: str) -> tuple:
    """Methods with equal keys need the same per-frame data: ROI colours only, or face crops of one size."""
    from smartmirror.vitals.methods import get_method

    spec = get_method(method)
    return ("frames", spec.input_size) if spec.kind == "frames" else ("trace",)


def video_traces(
    path: str | Path, methods: list[str] | tuple[str, ...], *, max_frames: int | None = None,
    landmarks_every: int = 1, tracker_factory: Callable[[], FaceTracker | FlowFaceTracker] | None = None,
) -> dict[str, VitalsTrace]:
    """One decode and one face-tracker pass feeding the traces of several methods.

    Methods that need the same per-frame data (all unsupervised methods: ROI colours; learned methods: face
    crops of their input size) share one trace; each trace is exactly what :func:`video_trace` gives for that
    method alone. ``landmarks_every``: FaceMesh on every this many frames, the landmarks interpolated between
    (:meth:`smartmirror.pipeline.Pipeline.run`). ``tracker_factory`` builds the face tracker (default: FaceMesh on
    every frame).

    Raises
    ------
    VideoError
        The reader's codes, ``no_face`` when no frame shows a face, ``invalid_method`` for an unknown method.
    """
    specs: dict[tuple, AnalyzerSpec] = {}
    keys: dict[str, tuple] = {}
    try:
        for method in methods:
            keys[method] = _crop_key(method)
    except ValueError as exc:
        raise VideoError("invalid_method", str(exc)) from None
    for method in methods:
        if keys[method] not in specs:
            specs[keys[method]] = vitals_spec(method, name=f"vitals-{len(specs)}", live=False, max_seconds=1e9)
    with Pipeline(specs.values(), landmarks_every=landmarks_every, tracker_factory=tracker_factory) as pipeline:
        for runner in pipeline.runners.values():
            if not runner.start():
                if isinstance(runner.exception, ValueError):
                    raise VideoError("invalid_method", str(runner.exception)) from None
                raise runner.exception or RuntimeError(runner.error)
        frames = pipeline.run(Prefetcher(read_video_packets(path, max_frames=max_frames)), overlap=True)
        with contextlib.closing(frames):
            for _ in frames:
                failed = next((r.exception for r in pipeline.runners.values() if r.exception is not None), None)
                if failed is not None:
                    raise failed
        traces = {key: pipeline.runners[spec.name].analyzer.trace() for key, spec in specs.items()}
        if pipeline.frames_with_face == 0:
            raise VideoError("no_face", f"No face found in any of the {pipeline.frames} frames of {Path(path).name}")
    return {method: traces[keys[method]] for method in methods}


def video_trace(path: str | Path, *, method: str = DEFAULT_METHOD, max_frames: int | None = None,
                landmarks_every: int = 1) -> VitalsTrace:
    """Decode a video, track the face and measure the skin ROI of every frame (``landmarks_every``: see
    :func:`video_traces`).

    Raises
    ------
    VideoError
        The reader's codes, ``no_face`` when no frame shows a face, ``invalid_method`` for an unknown method.
    """
    return video_traces(path, [method], max_frames=max_frames, landmarks_every=landmarks_every)[method]


def pulse_signal(trace: VitalsTrace, *, method: str = DEFAULT_METHOD) -> tuple[np.ndarray, np.ndarray]:
    """(times_s, pulse) of a trace: each face segment's pulse band-passed, concatenated, scaled to [0, 1].

    Times jump across gaps where the face was lost for more than half a second.
    """
    segments = build_segments(trace, method, min_seconds=2.0)
    if not segments:
        return np.zeros(0), np.zeros(0)
    times = np.concatenate([s.grid_s for s in segments])
    pulse = np.concatenate([bandpass(s.pulse, sampling_rate=GRID_RATE_HZ, low_hz=PULSE_BAND_HZ[0],
                                     high_hz=PULSE_BAND_HZ[1]) for s in segments])
    span = float(pulse.max() - pulse.min())
    return times, (pulse - pulse.min()) / span if span > 0 else np.zeros_like(pulse)


def extract_rppg_signal(
    video_path: str | Path, method: str = "pos", frames: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The pulse signal of a face video.

    Parameters
    ----------
    video_path : str or Path
        The video file.
    method : str
        Pulse method name (``pos``, ``chrom``, ``green``, ``ica`` or a registered learned one); ``pos`` by default
        here (the report's default is :data:`smartmirror.vitals.rppg.DEFAULT_METHOD`).
    frames : int, optional
        Read at most this many frames (default: the whole video).

    Returns
    -------
    times : ndarray, shape (n,)
        Seconds on the video's clock, an even 30 Hz grid over the stretches with a face.
    signal : ndarray, shape (n,)
        The pulse band-passed to 36-240 beats/min, peaks at systole (blood volume up), scaled to [0, 1].

    Raises
    ------
    VideoError
        For unreadable files, a video without a face, or an unknown method (``invalid_method``).
    """
    trace = video_trace(video_path, method=method, max_frames=frames)
    return pulse_signal(trace, method=method)
