"""Heart rate from a pulse signal, window by window: the window reading, the tracker, the gate, the clip's mean.

The flow for one window (>= 10 s in steady state, sliding by 1 s), :func:`estimate_window`:

1. the window's spectrum, peaks, harmonic check and SNR (:mod:`smartmirror.vitals.spectrum`);
2. the colour signature arbitrates the harmonic check both ways (:mod:`smartmirror.vitals.colour_signature`):
   a "half" that is not blood-coloured is an artefact (keep the strongest), and a strong peak at twice the rate
   that is blood-coloured while the chosen one is not means the chosen one was an artefact at half the rate (a
   0.5x error caught);
3. :func:`heart_rate_confidence`: 0..1 from the SNR and the pulse's colour signature (a real pulse varies along
   the blood-volume direction of the colour plane; noise and motion do not);
4. :class:`HeartRateTracker`: a Kalman filter on the rate that picks, among the window's peaks, the one that
   best continues the track, and re-acquires when a new rhythm persists.

That is the window-by-window reading. The live analyzer pools the last 30 s of window spectra instead
(:mod:`smartmirror.vitals.pooled_rate`); the clip's rate (report, ``eval``, the live summary) is found with
hindsight along the most likely rate course through all the windows (:mod:`smartmirror.vitals.rate_path`), rated
also by how far the pulse stands above the camera's own noise floor (:mod:`smartmirror.vitals.noise_floor`).

Below :data:`CONFIDENCE_GATE` the reported heart rate is ``None``, not a guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from smartmirror.vitals.colour_signature import PulseSignature, pulse_signature
from smartmirror.vitals.signal import bandpass
from smartmirror.vitals.spectrum import (
    HR_BAND_BPM,
    SpectralPeak,
    pulse_snr_db,
    pulse_spectrum,
    resolve_harmonics,
    spectral_peaks,
)

WINDOW_S = 10.0
STEP_S = 1.0
#: Seconds of face data before the first reading (the issue asks for one within 8 s of a face appearing).
MIN_WINDOW_S = 6.0
#: Readings below this confidence are reported as None.
CONFIDENCE_GATE = 0.5
#: SNR (dB) at which the SNR part of the confidence is 0.5, and its logistic scale (dB).
SNR_MIDPOINT_DB = -2.5
SNR_SCALE_DB = 1.5
#: A peak at twice the chosen rate with at least this fraction of its power is a candidate for a 0.5x error;
#: the colour signature decides (blood pulses in the blood-volume direction, artefacts do not).
DOUBLE_PEAK_RATIO = 0.4


@dataclass(frozen=True)
class WindowEstimate:
    """The spectral reading of one window (before tracking)."""

    t_end_s: float
    bpm: float | None             # strongest peak after the harmonic check (None: no peak in band)
    peaks: tuple[SpectralPeak, ...]
    snr_db: float
    signature: PulseSignature | None
    confidence: float


@dataclass(frozen=True)
class HeartRateReading:
    """The tracked heart rate at the end of one window."""

    t_s: float
    heart_rate_bpm: float | None  # None below the confidence gate
    tracked_bpm: float | None     # the tracker's value regardless of the gate (for evaluation)
    confidence: float             # 0..1
    snr_db: float
    window_bpm: float | None = None        # the window's own harmonic-checked peak
    signature_score: float | None = None   # 0..1, blood-volume colour signature of the window


def heart_rate_confidence(snr_db: float, signature: PulseSignature | None) -> float:
    """0..1 from the SNR (logistic around :data:`SNR_MIDPOINT_DB`) times the colour-signature score."""
    from_snr = 1.0 / (1.0 + math.exp(-(snr_db - SNR_MIDPOINT_DB) / SNR_SCALE_DB))
    from_colour = signature.score if signature is not None else 0.5
    return float(np.clip(from_snr * from_colour, 0.0, 1.0))


def estimate_window(
    pulse: np.ndarray, rgb: np.ndarray | None, *, sampling_rate: float, t_end_s: float = 0.0
) -> WindowEstimate:
    """Spectral reading of one window: peaks, harmonic-checked rate, SNR, colour signature, confidence.

    Parameters
    ----------
    pulse : ndarray, shape (n,)
        Pulse on an even grid (any method's output).
    rgb : ndarray, shape (n, 3), optional
        The same window's mean skin colours (for the colour signature); None skips the signature.
    sampling_rate : float
        In Hz (samples/second).
    """
    pulse = bandpass(pulse, sampling_rate=sampling_rate, low_hz=0.6, high_hz=4.0)
    freqs, power = pulse_spectrum(pulse, sampling_rate=sampling_rate)
    peaks = spectral_peaks(freqs, power)
    in_band = (freqs >= HR_BAND_BPM[0] / 60) & (freqs <= HR_BAND_BPM[1] / 60)
    noise_floor = float(np.median(power[in_band])) if in_band.any() else 0.0
    best = resolve_harmonics(peaks, noise_floor=noise_floor)
    if best is None:
        return WindowEstimate(t_end_s, None, (), -60.0, None, 0.0)
    signatures: dict[float, PulseSignature | None] = {}

    def signature_of(peak: SpectralPeak) -> PulseSignature | None:
        if rgb is None:
            return None
        if peak.bpm not in signatures:
            signatures[peak.bpm] = pulse_signature(rgb, sampling_rate=sampling_rate, bpm=peak.bpm)
        return signatures[peak.bpm]

    def score(peak: SpectralPeak) -> float:
        found = signature_of(peak)
        return found.score if found is not None else 0.0

    if rgb is not None:
        if best is not peaks[0] and score(best) + 0.2 < score(peaks[0]):
            best = peaks[0]  # the "half" is not blood-coloured: a sub-harmonic artefact, not the fundamental
        double = [p for p in peaks if p is not best and abs(p.bpm - 2 * best.bpm) <= max(3.0, 0.03 * best.bpm)
                  and p.power >= DOUBLE_PEAK_RATIO * best.power]
        if double and score(double[0]) > score(best) + 0.3:
            best = double[0]  # the stronger peak at half the rate is not blood-coloured: a 0.5x error caught
    snr = pulse_snr_db(freqs, power, best.bpm)
    signature = signature_of(best)
    ordered = (best,) + tuple(p for p in peaks if p is not best)
    return WindowEstimate(t_end_s, best.bpm, ordered, snr, signature, heart_rate_confidence(snr, signature))


class HeartRateTracker:
    """Continuity across windows: a Kalman filter on the rate that chooses among each window's peaks.

    Each window offers candidate peaks; the tracker scores each by its relative power and by how well it
    continues the track (Gaussian in the innovation), takes the best, and filters it. When the window's own best
    peak disagrees with the track for ``reacquire_after`` windows in a row and agrees with itself, the track
    jumps to it (the person's rate really changed, or the track had locked on a wrong peak).

    Parameters
    ----------
    process_sd_bpm_per_s : float
        How fast a heart rate may wander, beats/min per second (standard deviation).
    measurement_sd_bpm : float
        Spread of one confident window's reading, beats/min.
    reacquire_after : int
        Windows of persistent disagreement before the track jumps.
    """

    def __init__(self, process_sd_bpm_per_s: float = 1.5, measurement_sd_bpm: float = 2.0, reacquire_after: int = 3):
        self.process_sd_bpm_per_s = process_sd_bpm_per_s
        self.measurement_sd_bpm = measurement_sd_bpm
        self.reacquire_after = reacquire_after
        self.reset()

    def reset(self) -> None:
        """Forget the track."""
        self.bpm_: float | None = None
        self.variance_: float = 0.0
        self.t_: float | None = None
        self.disagreements_: list[float] = []

    def update(self, window: WindowEstimate) -> float | None:
        """Take one window's reading; returns the tracked rate (beats/min) or None before any peak."""
        if window.bpm is None:
            return self.bpm_
        confidence = max(window.confidence, 0.05)
        measurement_var = (self.measurement_sd_bpm / confidence) ** 2
        if self.bpm_ is None:
            self.bpm_, self.variance_, self.t_ = window.bpm, measurement_var, window.t_end_s
            return self.bpm_
        dt = max(window.t_end_s - (self.t_ if self.t_ is not None else window.t_end_s), 0.0)
        self.t_ = window.t_end_s
        self.variance_ += (self.process_sd_bpm_per_s * max(dt, 1e-3)) ** 2
        spread = self.variance_ + measurement_var
        top_power = max(p.power for p in window.peaks)
        best_score, chosen = -np.inf, window.peaks[0]
        for rank, peak in enumerate(window.peaks):
            prior = 0.0 if rank == 0 else math.log(max(peak.power / top_power, 1e-12))
            score = prior - (peak.bpm - self.bpm_) ** 2 / (2 * spread)
            if score > best_score:
                best_score, chosen = score, peak
        own = window.peaks[0]
        gate = 3.0 * math.sqrt(spread)
        if abs(own.bpm - self.bpm_) > max(gate, 8.0):
            self.disagreements_.append(own.bpm)
            recent = self.disagreements_[-self.reacquire_after:]
            if len(recent) >= self.reacquire_after and np.ptp(recent) <= 8.0:
                self.bpm_, self.variance_ = float(np.mean(recent)), measurement_var
                self.disagreements_.clear()
                return self.bpm_
        else:
            self.disagreements_.clear()
        gain = self.variance_ / (self.variance_ + measurement_var)
        self.bpm_ += gain * (chosen.bpm - self.bpm_)
        self.variance_ *= 1.0 - gain
        return self.bpm_


def heart_rate_series(
    pulse: np.ndarray, rgb: np.ndarray | None, *, sampling_rate: float, t0_s: float = 0.0,
    window_s: float = WINDOW_S, step_s: float = STEP_S, min_window_s: float = MIN_WINDOW_S,
    tracker: HeartRateTracker | None = None,
) -> list[HeartRateReading]:
    """Tracked readings over sliding windows of one contiguous pulse segment.

    Windows end every ``step_s`` from ``min_window_s`` on; they grow to ``window_s`` and then slide.

    Parameters
    ----------
    pulse : ndarray, shape (n,)
        Pulse on an even grid starting at ``t0_s``.
    rgb : ndarray, shape (n, 3), optional
        The matching skin colours (for the colour signature in the confidence).
    sampling_rate : float
        In Hz (samples/second).
    """
    tracker = tracker or HeartRateTracker()
    n = len(pulse)
    readings = []
    min_samples = int(round(min_window_s * sampling_rate))
    window = int(round(window_s * sampling_rate))
    step = max(1, int(round(step_s * sampling_rate)))
    end = min_samples
    while end <= n:
        start = max(0, end - window)
        t_end = t0_s + (end - 1) / sampling_rate
        estimate = estimate_window(pulse[start:end], None if rgb is None else rgb[start:end],
                                   sampling_rate=sampling_rate, t_end_s=t_end)
        tracked = tracker.update(estimate)
        readings.append(gated_reading(t_end, tracked, estimate))
        end += step
    return readings


def track_window(tracker: HeartRateTracker, estimate: WindowEstimate) -> HeartRateReading:
    """Feed one window to the tracker and return the (gated) reading."""
    return gated_reading(estimate.t_end_s, tracker.update(estimate), estimate)


def gated_reading(t_s: float, tracked: float | None, estimate: WindowEstimate) -> HeartRateReading:
    confidence = estimate.confidence
    if tracked is not None and estimate.bpm is not None and abs(tracked - estimate.bpm) > 6.0:
        confidence *= 0.5  # the window's own peak disagrees with the track
    gated = tracked if (tracked is not None and confidence >= CONFIDENCE_GATE) else None
    return HeartRateReading(
        t_s=t_s, heart_rate_bpm=None if gated is None else round(gated, 1), tracked_bpm=tracked,
        confidence=round(confidence, 3), snr_db=round(estimate.snr_db, 2), window_bpm=estimate.bpm,
        signature_score=None if estimate.signature is None else round(estimate.signature.score, 3),
    )


@dataclass(frozen=True)
class ClipHeartRate:
    """The heart rate over a whole clip."""

    heart_rate_bpm: float | None
    tracked_bpm: float | None
    confidence: float
    snr_db: float | None


def clip_heart_rate(readings: list[HeartRateReading]) -> ClipHeartRate:
    """Confidence-weighted mean of the tracked readings; None when the mean confidence is below the gate."""
    usable = [r for r in readings if r.tracked_bpm is not None]
    if not usable:
        return ClipHeartRate(None, None, 0.0, None)
    rates = np.array([r.tracked_bpm for r in usable])
    weights = np.array([max(r.confidence, 1e-3) for r in usable])
    tracked = float(np.sum(rates * weights) / np.sum(weights))
    confidence = float(np.mean([r.confidence for r in usable]))
    snr = float(np.median([r.snr_db for r in usable]))
    gated = round(tracked, 1) if confidence >= CONFIDENCE_GATE else None
    return ClipHeartRate(gated, tracked, round(confidence, 3), round(snr, 2))
