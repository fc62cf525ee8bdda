"""Per-frame measurements in, every vital out: the clip-level computation shared by the report, the live
analyzer's summary, ``extract_rppg_signal`` and dataset evaluation. Pure numpy; no I/O, no threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from smartmirror.vitals import colour_signature, heart, hrv, quality, respiration, spo2, stress
from smartmirror.vitals.methods import get_method
from smartmirror.vitals.rate_path import clip_heart_rate_from_paths, path_readings, rate_path
from smartmirror.vitals.rppg import (
    DEFAULT_METHOD,
    extract_pulse,
    orient_and_scale,
    remove_background,
    snr_optimal_pulse,
)
from smartmirror.vitals.signal import (
    GRID_RATE_HZ,
    gap_mask,
    normalise_channels,
    resample_even,
)

#: Longest gap in the face data (seconds) bridged by interpolation; longer gaps split the trace into segments.
MAX_GAP_S = 0.5


@dataclass
class VitalsTrace:
    """Per-frame measurements of one clip or session; arrays of equal length, NaN where no face.

    Attributes
    ----------
    times_s : ndarray, shape (n,)
        Frame times on the source clock, seconds.
    rgb : ndarray, shape (n, 3)
        Mean skin R, G, B (NaN without a face or skin).
    presence : ndarray, shape (n,)
        Face-detector confidence (NaN without a face).
    skin_fraction : ndarray, shape (n,)
        Share of ROI pixels that passed the skin test (NaN without a face).
    face_y : ndarray, shape (n,)
        Vertical position of the face (landmark mean, in inter-ocular distances; NaN without a face).
    crops : list of ndarray or None
        Face crops (RGB uint8) per frame for "frames" methods (None entries without a face).
    background_rgb : ndarray, shape (n, 6), optional
        R, G, B of the frame's two top corners (:func:`~smartmirror.vitals.signal.background_patches_rgb`; NaN
        where the face reached a corner), the scene reference regressed out of the skin colours.
    pulse_samples : (ndarray, ndarray), optional
        A "frames" method's pulse already run frame by frame (:mod:`smartmirror.vitals.streaming`): sample times
        (s, ascending) and values. Used instead of running the method over ``crops``.
    """

    times_s: np.ndarray
    rgb: np.ndarray
    presence: np.ndarray
    skin_fraction: np.ndarray
    face_y: np.ndarray
    crops: list | None = None
    background_rgb: np.ndarray | None = None
    pulse_samples: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def face_found(self) -> np.ndarray:
        return np.isfinite(self.presence)

    @property
    def frames(self) -> int:
        return len(self.times_s)

    def since(self, t_s: float) -> VitalsTrace:
        """The frames at ``t_s`` seconds or later (streamed pulse samples are kept whole: segments pick theirs
        by time)."""
        pick = slice(int(np.searchsorted(self.times_s, t_s)), None)
        return VitalsTrace(
            times_s=self.times_s[pick], rgb=self.rgb[pick], presence=self.presence[pick],
            skin_fraction=self.skin_fraction[pick], face_y=self.face_y[pick],
            crops=None if self.crops is None else self.crops[pick],
            background_rgb=None if self.background_rgb is None else self.background_rgb[pick],
            pulse_samples=self.pulse_samples,
        )


@dataclass(frozen=True)
class Segment:
    """A stretch of continuous face data resampled to the even grid."""

    grid_s: np.ndarray
    rgb: np.ndarray
    face_y: np.ndarray
    pulse: np.ndarray          # blood-volume oriented, unit sd (unfiltered method output)

    @property
    def seconds(self) -> float:
        return float(len(self.grid_s) / GRID_RATE_HZ)


@dataclass
class VitalsResult:
    """Everything measured on a trace (the report's vitals keys come from :meth:`report`)."""

    heart_rate: heart.ClipHeartRate
    readings: list[heart.HeartRateReading]
    hrv: hrv.HRV | None
    respiration: respiration.RespirationEstimate | None
    spo2: spo2.SpO2Estimate | None
    stress: stress.StressEstimate | None
    face: quality.FaceQuality
    liveness: bool | None
    frames: int
    fps: float | None
    method: str
    segments: list[Segment] = field(default_factory=list, repr=False)

    def report(self) -> dict:
        """The report's top-level vitals keys (``docs/states.md``), plus ``spo2`` details and the method used."""
        hrv_section = self.hrv.report() if self.hrv is not None else {
            "sdnn_ms": None, "rmssd_ms": None, "pnn50": None, "lf_hf": None, "stress_index": None}
        return {
            "heart_rate_bpm": self.heart_rate.heart_rate_bpm,
            "heart_rate_confidence": self.heart_rate.confidence,
            "pulse_snr_db": self.heart_rate.snr_db,
            "hrv": hrv_section,
            "respiration_rate_bpm": None if self.respiration is None else self.respiration.rate_bpm,
            "spo2_percent": None if self.spo2 is None else self.spo2.percent,
            "spo2": None if self.spo2 is None else self.spo2.report(),
            "stress": None if self.stress is None else self.stress.report(),
            "quality": {
                "face_detected_ratio": self.face.face_detected_ratio,
                "obstruction": self.face.obstruction,
                "liveness": self.liveness,
                "frames": self.frames,
                "fps": self.fps,
                "message": self.face.message,
            },
            "pulse_method": self.method,
        }


def measured_fps(times_s: np.ndarray) -> float | None:
    """Frames per second from the timestamps (median interval), None with fewer than 2 frames."""
    times_s = np.asarray(times_s, dtype=np.float64)
    if len(times_s) < 2:
        return None
    step = float(np.median(np.diff(times_s)))
    return round(1.0 / step, 2) if step > 0 else None


def _pulse_from_crops(method: str, crops: list[np.ndarray], times_s: np.ndarray, grid_s: np.ndarray) -> np.ndarray:
    spec = get_method(method)
    frames = np.stack(crops)
    # the mean rate over the run (as the live stream re-times by the frames' own times), not the median interval:
    # a container's millisecond timestamps (66/67 ms at 15 frames/s) put that 0.5 % off
    span = float(times_s[-1] - times_s[0])
    rate = (len(times_s) - 1) / span if span > 0 else GRID_RATE_HZ
    per_frame = np.asarray(spec.fn(frames, sampling_rate=rate), dtype=np.float64)
    return np.interp(grid_s, times_s, per_frame)


def _background_on_grid(trace: VitalsTrace, valid: np.ndarray, grid: np.ndarray) -> np.ndarray | None:
    """The background patches measured on every face frame, resampled to ``grid`` (None when there are none)."""
    if trace.background_rgb is None:
        return None
    background = np.asarray(trace.background_rgb, dtype=np.float64).reshape(trace.frames, -1)[valid]
    usable = np.all(np.isfinite(background), axis=0)
    if not usable.any():
        return None
    times = trace.times_s[valid]
    return np.stack([np.interp(grid, times, background[:, k]) for k in np.flatnonzero(usable)], axis=1)


def build_segments(trace: VitalsTrace, method: str = DEFAULT_METHOD, *, min_seconds: float = heart.MIN_WINDOW_S
                   ) -> list[Segment]:
    """Split the trace at gaps longer than :data:`MAX_GAP_S`, resample each part and extract its pulse."""
    valid = np.all(np.isfinite(trace.rgb), axis=1)
    if valid.sum() < 2:
        return []
    grid, rgb = resample_even(trace.times_s, trace.rgb)
    background = _background_on_grid(trace, valid, grid)
    inside = gap_mask(trace.times_s, valid, grid, max_gap_s=MAX_GAP_S)
    padded = np.concatenate([[False], inside, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    spec = get_method(method)
    segments = []
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if (stop - start) / GRID_RATE_HZ < min_seconds:
            continue
        seg_grid, seg_rgb = grid[start:stop], rgb[start:stop]
        if background is not None:
            seg_rgb = remove_background(seg_rgb, background[start:stop], sampling_rate=GRID_RATE_HZ)
        seg_y = np.interp(seg_grid, trace.times_s[valid], trace.face_y[valid])
        if spec.kind == "trace":
            pulse = extract_pulse(seg_rgb, sampling_rate=GRID_RATE_HZ, method=method)
        elif trace.pulse_samples is not None:  # streamed live: the segment ends where the stream has got to
            times, values = trace.pulse_samples
            step = 1.0 / GRID_RATE_HZ
            inside_run = (times >= seg_grid[0] - step) & (times <= seg_grid[-1] + step)
            if inside_run.sum() < 2:
                continue
            times, values = times[inside_run], values[inside_run]
            keep = int(np.searchsorted(seg_grid, times[-1], side="right"))
            if keep / GRID_RATE_HZ < min_seconds:
                continue
            seg_grid, seg_rgb, seg_y = seg_grid[:keep], seg_rgb[:keep], seg_y[:keep]
            pulse = orient_and_scale(np.interp(seg_grid, times, values), seg_rgb, sampling_rate=GRID_RATE_HZ)
        else:
            near = (trace.times_s >= seg_grid[0] - MAX_GAP_S) & (trace.times_s <= seg_grid[-1] + MAX_GAP_S)
            in_segment = valid & near
            indices = [i for i in np.flatnonzero(in_segment) if trace.crops and trace.crops[i] is not None]
            if len(indices) < 2:
                continue
            raw = _pulse_from_crops(method, [trace.crops[i] for i in indices], trace.times_s[indices], seg_grid)
            pulse = orient_and_scale(raw, seg_rgb, sampling_rate=GRID_RATE_HZ)
        segments.append(Segment(seg_grid, seg_rgb, seg_y, pulse))
    return segments


def analyze_trace(
    trace: VitalsTrace,
    *,
    method: str = DEFAULT_METHOD,
    resting_heart_rate_bpm: float | None = None,
    spo2_calibration: spo2.SpO2Calibration | None = None,
) -> VitalsResult:
    """All vitals of one trace (a clip, or a live session's buffer)."""
    face = quality.face_quality(trace.face_found, trace.presence, trace.skin_fraction)
    fps = measured_fps(trace.times_s)
    segments = build_segments(trace, method)
    readings: list[heart.HeartRateReading] = []
    paths = []
    for segment in segments:
        path = rate_path(segment.pulse, segment.rgb, sampling_rate=GRID_RATE_HZ, t0_s=float(segment.grid_s[0]))
        if path is not None:
            paths.append(path)
            readings += path_readings(path)
    clip = clip_heart_rate_from_paths(paths)
    liveness = quality.pulse_liveness(readings)
    rate_for_beats = clip.tracked_bpm
    hrv_result = respiration_result = spo2_result = None
    if segments and rate_for_beats is not None:
        beats = [segment_beats(s, rate_for_beats) for s in segments]
        if clip.heart_rate_bpm is not None:
            hrv_result = hrv.hrv_from_beats(beats)
            longest = int(np.argmax([len(s.grid_s) for s in segments]))
            respiration_result = respiration_from_segment(segments[longest], beats[longest])
            signature = colour_signature.pulse_signature(segments[longest].rgb, sampling_rate=GRID_RATE_HZ,
                                                         bpm=rate_for_beats)
            ratio = None if signature is None else spo2.ratio_of_ratios(signature.amplitudes_rgb)
            spo2_result = spo2.estimate_spo2(ratio, quality=clip.confidence, calibration=spo2_calibration)
    stress_result = stress.estimate_stress(
        stress_index=None if hrv_result is None else hrv_result.stress_index,
        heart_rate_bpm=clip.heart_rate_bpm, resting_heart_rate_bpm=resting_heart_rate_bpm,
    )
    return VitalsResult(
        heart_rate=clip, readings=readings, hrv=hrv_result, respiration=respiration_result, spo2=spo2_result,
        stress=stress_result, face=face, liveness=liveness, frames=trace.frames, fps=fps, method=method,
        segments=segments,
    )


def segment_beats(segment: Segment, heart_rate_bpm: float) -> np.ndarray:
    """Beat times of one segment, found on its SNR-optimal pulse (see :func:`.rppg.snr_optimal_pulse`)."""
    pulse = snr_optimal_pulse(segment.rgb, sampling_rate=GRID_RATE_HZ, heart_rate_bpm=heart_rate_bpm)
    return hrv.detect_beats(pulse, sampling_rate=GRID_RATE_HZ, heart_rate_bpm=heart_rate_bpm,
                            t0_s=float(segment.grid_s[0]))


def respiration_from_segment(segment: Segment, beats: np.ndarray) -> respiration.RespirationEstimate:
    """Respiration rate over one segment: the pulse's three modulations fused with the face's vertical motion."""
    if segment.seconds < respiration.MIN_RESPIRATION_S:
        return respiration.RespirationEstimate(None, 0.0)
    green = normalise_channels(segment.rgb)[:, 1]
    series = respiration.respiratory_series(segment.grid_s, green, segment.pulse, beats,
                                            sampling_rate=GRID_RATE_HZ)
    series["motion"] = (segment.grid_s, segment.face_y)
    return respiration.respiration_rate(series, t_start=float(segment.grid_s[0]), t_end=float(segment.grid_s[-1]))
