"""The vitals analyzer: frames in, live vitals state out (engine and API sessions), clip report at the end.

Per frame it only measures the skin ROI's mean colour, two background patches' colours (the scene reference),
the face's presence, skin share and vertical position (well under a millisecond). About once per second of
source time it reads the heart rate from the spectra of the last 30 s of windows
(:func:`~smartmirror.vitals.pooled_rate.pooled_runs_estimate`); every few seconds it refreshes HRV,
respiration, SpO2 and stress from the current stretch of face data. A real-time learned method (FacePhys) runs
live frame by frame on its own face crop (:mod:`smartmirror.vitals.streaming`); the readings then use its samples.
Memory is bounded by ``max_seconds`` of per-frame numbers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from collections import deque
from typing import Any

import numpy as np

from smartmirror.face import FaceObservation
from smartmirror.frames import FramePacket
from smartmirror.vitals import colour_signature, heart, hrv, pipeline, pooled_rate, quality, respiration, spo2, stress
from smartmirror.vitals.face_crops import FaceCropper
from smartmirror.vitals.methods import get_method
from smartmirror.vitals.neural import ONNX_CHUNK_FRAMES
from smartmirror.vitals.rppg import DEFAULT_METHOD
from smartmirror.vitals.signal import (
    GRID_RATE_HZ,
    LandmarkSmoother,
    background_patches_rgb,
    bandpass,
    face_crop,
    polygons_mean_rgb,
    skin_roi_mean_rgb,
)
from smartmirror.vitals.state import HrvSummary, VitalsState, VitalsWarmup
from smartmirror.vitals.streaming import STREAM_CHUNK_FRAMES, LivePulse, can_stream

log = logging.getLogger(__name__)

#: Seconds of face data each vital needs before its first value (shown as warm-up in the live state).
WARMUP_S = {
    "heart_rate": heart.MIN_WINDOW_S + (pooled_rate.LIVE_FAST_WINDOWS - 1) * heart.STEP_S,  # a clear pulse; weak: 15 s
    "spo2": heart.WINDOW_S,
    "respiration": respiration.MIN_RESPIRATION_S,
    "hrv": hrv.MIN_CLEAN_S + 2.0,
}
#: Debugging aid: a file path here appends one JSON line per frame (time, ROI and background mean colours; never
#: pixels) and per heart-rate update (window rate, SNR, confidence) of the live analyzer.
_DEBUG_PATH = os.environ.get("SMARTMIRROR_VITALS_DEBUG")


def _debug(record: dict[str, Any]) -> None:
    if _DEBUG_PATH:  # callers check first too, so the record is only built when asked for
        with open(_DEBUG_PATH, "a") as handle:
            handle.write(json.dumps(record) + "\n")


def _learned_cropper(method: Any) -> FaceCropper:
    """The learned methods' crop maker (:class:`smartmirror.vitals.face_crops.FaceCropper`)."""
    return FaceCropper(size=method.input_size) if method.input_size else FaceCropper()


def with_raw_colour(packet: FramePacket, rgb_here: np.ndarray) -> np.ndarray:
    """The skin colour of the frame's own ROI (``rgb_here``, measured on ``packet.image``) with what lossy
    encoding took from it restored from the upstream measurement of the raw frame.

    The upstream mask (``packet.skin_roi``) lags the face by up to a second, so its colour alone would carry the
    head's motion; the encoded image keeps the motion's large colour changes but loses part of the pulse's
    0.1-1 %. Per channel the result is ``rgb_here * raw(mask) / encoded(mask)``: the encoded frame measured inside
    the upstream mask, against the raw frame inside the same mask. Without upstream data it is ``rgb_here``;
    NaN when the meter is on but sent nothing usable for this frame.
    """
    if packet.skin_rgb is None:
        return rgb_here
    if packet.skin_roi is None or not np.all(np.isfinite(packet.skin_rgb)):
        return np.full(3, np.nan)
    outlines, holes = packet.skin_roi
    encoded = polygons_mean_rgb(packet.image, outlines, holes).rgb
    with np.errstate(divide="ignore", invalid="ignore"):
        restored = rgb_here * np.asarray(packet.skin_rgb, dtype=np.float64) / encoded
    return restored if np.all(np.isfinite(restored)) else np.full(3, np.nan)


def face_vertical_position(face: FaceObservation) -> float:
    """Mean landmark height in inter-ocular distances (breathing moves it a little)."""
    scale = max(face.inter_ocular_px, 1.0)
    return float(face.landmarks_px[:, 1].mean() / scale)


class VitalsAnalyzer:
    """Heart rate, HRV, stress, respiration, SpO2, quality and liveness from face frames.

    Parameters
    ----------
    method : str
        Pulse method name from :mod:`smartmirror.vitals.methods` (default: the best measured, POS).
    live : bool
        Compute the live state during :meth:`update` (engine, API). The clip report sets False: it only needs
        :meth:`summary`, so per-frame work stays at the ROI means.
    max_seconds : float
        Seconds of per-frame data kept (bounded memory; LF/HF needs >= 120 s).
    resting_heart_rate_bpm : float, optional
        The person's resting rate, for the heart-rate stress basis; learned in long sessions when None.
    spo2_calibration_path : str, optional
        Where the SpO2 calibration is read from (default: the user config dir, see :mod:`.spo2`).
    update_every_s, slow_update_every_s : float
        Source-clock seconds between heart-rate updates and between HRV/respiration/SpO2 updates.
    waveform_s : float
        Seconds of pulse waveform returned in the live state (for plotting).
    stream_pulse : bool, optional
        Run a learned method that can stream (FacePhys) frame by frame as the crops come, instead of over the
        kept crops when the summary is asked for. Default: when ``live``. The clip report sets True, so the
        network runs beside the tracking, on a worker thread of its own while the analyzer measures the next
        frames (the summary then only waits for the last chunk); eval leaves it off, because it scores several
        methods on one trace's crops.
    """

    name = "vitals"

    def __init__(
        self,
        method: str = DEFAULT_METHOD,
        live: bool = True,
        max_seconds: float = 300.0,
        resting_heart_rate_bpm: float | None = None,
        spo2_calibration_path: str | None = None,
        update_every_s: float = 1.0,
        slow_update_every_s: float = 5.0,
        waveform_s: float = 6.0,
        stream_pulse: bool | None = None,
    ):
        self.method = method
        self.live = live
        self.max_seconds = max_seconds
        self.resting_heart_rate_bpm = resting_heart_rate_bpm
        self.spo2_calibration_path = spo2_calibration_path
        self.update_every_s = update_every_s
        self.slow_update_every_s = slow_update_every_s
        self.waveform_s = waveform_s
        self.stream_pulse = stream_pulse
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget all frames and readings (new person or new clip); validates the configuration."""
        self.method_ = get_method(self.method)  # ValueError listing the valid names
        if self.max_seconds < heart.WINDOW_S:
            raise ValueError(f"max_seconds must be >= {heart.WINDOW_S}, got {self.max_seconds!r}")
        self.lock_ = threading.Lock()  # update() on the analyzer's thread, summary() maybe on another
        self.times_: deque[float] = deque()
        self.rgb_: deque[np.ndarray] = deque()
        self.presence_: deque[float] = deque()
        self.skin_: deque[float] = deque()
        self.face_y_: deque[float] = deque()
        self.background_: deque[np.ndarray] = deque()
        # a real-time learned method streams (live: a few frames a network step; a clip: ONNX_CHUNK_FRAMES);
        # otherwise crops wait for a batch run
        streams = (self.live if self.stream_pulse is None else self.stream_pulse) and self.method_.realtime \
            and can_stream(self.method_)
        self.stream_ = None
        if streams:
            self.stream_ = LivePulse(self.method_.name, self.max_seconds, pipeline.MAX_GAP_S,
                                     chunk_frames=STREAM_CHUNK_FRAMES if self.live else ONNX_CHUNK_FRAMES,
                                     for_clip=not self.live, background=not self.live)
        learned = self.method_.kind == "frames"
        self.crops_: deque[np.ndarray | None] | None = deque() if learned and self.stream_ is None else None
        self.cropper_ = _learned_cropper(self.method_) if learned else None
        self.smoother_ = LandmarkSmoother()
        self.motion_ = quality.FaceMotionLiveness(window_s=30.0 if self.live else self.max_seconds)
        self.resting_ = stress.RestingHeartRate()
        self.calibration_ = spo2.load_calibration(self.spo2_calibration_path)
        self.next_update_t_: float | None = None
        self.next_slow_t_: float | None = None
        self.last_face_t_: float | None = None
        self.run_start_t_: float | None = None
        self.reading_: heart.HeartRateReading | None = None
        self.slow_: dict[str, Any] = {}
        self.waveform_: list[float] = []
        self.state_: VitalsState | None = None

    def _append(self, t: float, rgb: np.ndarray, presence: float, skin: float, face_y: float,
                crop: np.ndarray | None, background: np.ndarray) -> None:
        with self.lock_:
            self._append_locked(t, rgb, presence, skin, face_y, crop, background)

    def _append_locked(self, t: float, rgb: np.ndarray, presence: float, skin: float, face_y: float,
                       crop: np.ndarray | None, background: np.ndarray) -> None:
        self.times_.append(t)
        self.rgb_.append(rgb)
        self.presence_.append(presence)
        self.skin_.append(skin)
        self.face_y_.append(face_y)
        self.background_.append(background)
        if self.crops_ is not None:
            self.crops_.append(crop)
        while self.times_ and t - self.times_[0] > self.max_seconds:
            self.times_.popleft()
            self.rgb_.popleft()
            self.presence_.popleft()
            self.skin_.popleft()
            self.face_y_.popleft()
            self.background_.popleft()
            if self.crops_ is not None:
                self.crops_.popleft()

    def close(self) -> None:
        """Release the learned methods' face-crop detector (open-rppg's BlazeFace session); made again on use."""
        if self.cropper_ is not None:
            self.cropper_.close()

    def trace(self) -> pipeline.VitalsTrace:
        """The per-frame data held now, as arrays (a consistent copy, safe from another thread)."""
        with self.lock_:
            n = len(self.times_)
            return pipeline.VitalsTrace(
                times_s=np.fromiter(self.times_, dtype=np.float64, count=n),
                rgb=np.array(self.rgb_, dtype=np.float64).reshape(n, 3),
                presence=np.fromiter(self.presence_, dtype=np.float64, count=n),
                skin_fraction=np.fromiter(self.skin_, dtype=np.float64, count=n),
                face_y=np.fromiter(self.face_y_, dtype=np.float64, count=n),
                crops=None if self.crops_ is None else list(self.crops_),
                background_rgb=np.array(self.background_, dtype=np.float64).reshape(n, 6),
                pulse_samples=None if self.stream_ is None else self.stream_.samples(),
            )

    # ------------------------------------------------------------------ per frame
    def update(self, packet: FramePacket, face: FaceObservation | None) -> VitalsState | None:
        """Measure one frame; in live mode, refresh the readings when they are due. Returns the live state
        (None when ``live`` is False: the clip report only needs :meth:`summary`)."""
        t = float(packet.t)
        if self.times_ and t <= self.times_[-1]:
            log.debug("vitals: frame at %.3f s is not after %.3f s; ignored", t, self.times_[-1])
            return self.state_
        message = quality.presence_message(None if face is None else face.presence_score)
        self.motion_.update(t, face)
        crop = None
        if self.cropper_ is not None:  # the learned methods' own stable crop, fed every frame
            crop, _ = self.cropper_.update(packet, face)
        if face is None:
            self._append(t, np.full(3, np.nan), np.nan, np.nan, np.nan, None, np.full(6, np.nan))
            self.smoother_.reset()
        else:
            rgb_here = skin_roi_mean_rgb(packet.image, self.smoother_.update(face.landmarks_px)).rgb
            rgb = with_raw_colour(packet, rgb_here)
            if self.cropper_ is not None and crop is None:
                crop = face_crop(packet.image, face, self.method_.input_size or (72, 72))
            skin = quality.roi_skin_fraction(packet.image, face)  # obstruction: this person's skin, any light
            background = background_patches_rgb(packet.image, face.landmarks_px)
            self._append(t, rgb, float(face.presence_score), skin, face_vertical_position(face), crop, background)
            if self.stream_ is not None:
                self.stream_.push(t, crop)
            if _DEBUG_PATH:  # the background's colours tell the codec's and the camera's share from the face's
                _debug({"t": t, "rgb": [float(v) for v in rgb],
                        "rgb_here": [float(v) for v in rgb_here],  # without the browser's meter
                        "meter": None if packet.skin_rgb is None else [float(v) for v in packet.skin_rgb],
                        "reused": bool(getattr(packet, "reused_face", False)),  # interpolated landmarks (live)
                        "background": [float(v) for v in background],
                        "wall": time.monotonic()})
            message = quality.presence_message(face.presence_score, skin)
            if self.last_face_t_ is None or t - self.last_face_t_ > pipeline.MAX_GAP_S:
                self.run_start_t_ = t
            self.last_face_t_ = t
        if not self.live:
            return None
        if self.next_update_t_ is None:
            self.next_update_t_ = t + self.update_every_s
            self.next_slow_t_ = t + self.slow_update_every_s
        if t >= self.next_update_t_:
            self.next_update_t_ = t + self.update_every_s
            self._update_heart_rate()
        if t >= self.next_slow_t_:
            self.next_slow_t_ = t + self.slow_update_every_s
            self._update_slow()
        self.state_ = self._live_state(t, face is not None, message)
        return self.state_

    def _recent_trace(self, seconds: float) -> pipeline.VitalsTrace | None:
        """The last ``seconds`` of per-frame data (None when the face is not in view now: no colour measured in
        the last ``pipeline.MAX_GAP_S``)."""
        trace = self.trace()
        times = trace.times_s
        valid = np.flatnonzero(np.all(np.isfinite(trace.rgb), axis=1))
        if len(valid) == 0 or times[-1] - times[valid[-1]] > pipeline.MAX_GAP_S:
            return None
        return trace.since(times[-1] - seconds)

    def _current_segment_trace(self, seconds: float) -> pipeline.VitalsTrace | None:
        """The last ``seconds`` of the current run of face frames (None when the face is not in view now).

        Gaps up to ``pipeline.MAX_GAP_S`` are bridged by resampling; a longer one ends the run.
        """
        trace = self._recent_trace(self.max_seconds)
        if trace is None:
            return None
        times = trace.times_s
        valid = np.flatnonzero(np.all(np.isfinite(trace.rgb), axis=1))
        breaks = np.flatnonzero(np.diff(times[valid]) > pipeline.MAX_GAP_S)
        start = valid[breaks[-1] + 1] if len(breaks) else valid[0]
        return trace.since(max(float(times[start]), float(times[-1] - seconds)))

    def _face_seconds(self, t: float) -> float:
        return 0.0 if self.run_start_t_ is None else max(0.0, t - self.run_start_t_)

    def _update_heart_rate(self) -> None:
        trace = self._recent_trace(pooled_rate.LIVE_POOL_S + 2.0)
        if trace is None:
            self.reading_ = None
            self.waveform_ = []
            return
        segments = pipeline.build_segments(trace, self.method)
        if not segments:
            self.reading_ = None
            return
        segment = segments[-1]
        tail = int(self.waveform_s * GRID_RATE_HZ)
        filtered = bandpass(segment.pulse, sampling_rate=GRID_RATE_HZ, low_hz=0.6, high_hz=4.0)[-tail:]
        scale = float(np.max(np.abs(filtered))) or 1.0
        self.waveform_ = [round(float(v), 3) for v in filtered / scale]
        runs = [pooled_rate.PulseRun(s.pulse, s.rgb, float(s.grid_s[0])) for s in segments]
        estimate = pooled_rate.pooled_runs_estimate(runs, sampling_rate=GRID_RATE_HZ)
        if estimate is None:  # too few windows pooled yet: warming up, nothing shown
            self.reading_ = None
            return
        self.reading_ = pooled_rate.pooled_reading(estimate)  # the 30 s pool is the continuity, across stalls too
        if _DEBUG_PATH:
            _debug({"update": float(segment.grid_s[-1]), "window_bpm": estimate.bpm, "snr": estimate.snr_db,
                    "conf": estimate.confidence, "shown": self.reading_.heart_rate_bpm,
                    "peaks": [[p.bpm, p.power] for p in estimate.peaks[:4]], "wall": time.monotonic()})
        self.resting_.add(self.reading_.heart_rate_bpm)

    def _update_slow(self) -> None:
        trace = self._current_segment_trace(self.max_seconds)
        if trace is None or self.reading_ is None or self.reading_.tracked_bpm is None:
            self.slow_ = {}
            return
        seconds = float(trace.times_s[-1] - trace.times_s[0])
        if seconds < WARMUP_S["spo2"]:
            return
        segments = pipeline.build_segments(trace, self.method)
        if not segments:
            return
        segment = segments[-1]
        rate = self.reading_.tracked_bpm
        result: dict[str, Any] = {}
        signature = colour_signature.pulse_signature(segment.rgb, sampling_rate=GRID_RATE_HZ, bpm=rate)
        ratio = None if signature is None else spo2.ratio_of_ratios(signature.amplitudes_rgb)
        result["spo2"] = spo2.estimate_spo2(ratio, quality=self.reading_.confidence, calibration=self.calibration_)
        beats = pipeline.segment_beats(segment, rate)
        if segment.seconds >= respiration.MIN_RESPIRATION_S:
            result["respiration"] = pipeline.respiration_from_segment(segment, beats)
        if segment.seconds >= hrv.MIN_CLEAN_S:
            result["hrv"] = hrv.hrv_from_beats(beats)
        self.slow_ = result

    def _live_state(self, t: float, face_present: bool, message: str | None) -> VitalsState:
        reading = self.reading_
        face_s = self._face_seconds(t) if face_present else 0.0
        hrv_result: hrv.HRV | None = self.slow_.get("hrv")
        resp: respiration.RespirationEstimate | None = self.slow_.get("respiration")
        oxygen: spo2.SpO2Estimate | None = self.slow_.get("spo2")
        heart_rate = None if reading is None else reading.heart_rate_bpm
        resting = self.resting_heart_rate_bpm if self.resting_heart_rate_bpm is not None else self.resting_.resting_bpm
        stress_estimate = stress.estimate_stress(
            stress_index=None if hrv_result is None else hrv_result.stress_index, heart_rate_bpm=heart_rate,
            resting_heart_rate_bpm=resting,
        )
        return VitalsState(
            face_present=face_present,
            message=message,
            heart_rate_bpm=heart_rate,
            heart_rate_confidence=0.0 if reading is None else reading.confidence,
            pulse_snr_db=None if reading is None else reading.snr_db,
            pulse_waveform=tuple(self.waveform_),
            pulse_waveform_rate_hz=GRID_RATE_HZ,
            warmup_s_left=VitalsWarmup(**{name: round(max(0.0, need - face_s), 1) for name, need in WARMUP_S.items()}),
            hrv=None if hrv_result is None else HrvSummary(**hrv_result.report()),
            respiration_rate_bpm=None if resp is None else resp.rate_bpm,
            spo2_percent=None if oxygen is None else oxygen.percent,
            spo2_calibrated=self.calibration_.calibrated,
            stress=stress_estimate,
            liveness=quality.combined_liveness(
                None if reading is None else bool(reading.confidence >= heart.CONFIDENCE_GATE), self.motion_.live()),
            method=self.method_.name,
        )

    # ------------------------------------------------------------------ clip
    def summary(self) -> dict[str, Any] | None:
        """The report's vitals keys computed over everything held (None before any frame)."""
        result = self.result()
        return None if result is None else result.report()

    def result(self) -> pipeline.VitalsResult | None:
        """The full clip result (readings, segments) for callers that need more than the report keys."""
        if self.stream_ is not None and not self.live:  # a clip: its last frames wait for a full chunk
            self.stream_.flush()
        trace = self.trace()
        if trace.frames == 0:
            return None
        resting = self.resting_heart_rate_bpm if self.resting_heart_rate_bpm is not None else self.resting_.resting_bpm
        result = pipeline.analyze_trace(trace, method=self.method_.name, resting_heart_rate_bpm=resting,
                                        spo2_calibration=self.calibration_)
        return dataclasses.replace(result, liveness=quality.combined_liveness(result.liveness, self.motion_.live()))
