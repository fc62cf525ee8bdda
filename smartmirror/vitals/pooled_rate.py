"""The live heart rate: the peaks of the mean of the last 30 s of window spectra, rated as the clip report's path.

:func:`pooled_window_estimate` pools, :func:`pooled_dominance` asks that no rival rhythm ties the pulse,
:func:`pooled_reading` gates the result at :data:`smartmirror.vitals.heart.CONFIDENCE_GATE`.
"""

from __future__ import annotations

import numpy as np

from smartmirror.vitals.heart import WINDOW_S, HeartRateReading, WindowEstimate, gated_reading
from smartmirror.vitals.noise_floor import path_floor_margins
from smartmirror.vitals.rate_path import PATH_GRID_BPM, RatePath, path_confidence, path_covariance, window_spectra
from smartmirror.vitals.spectrum import SpectralPeak, pulse_snr_db, resolve_harmonics, spectral_peaks

#: Seconds of the current face run whose window spectra the live reading pools (:func:`pooled_window_estimate`).
LIVE_POOL_S = 30.0
#: Sliding windows the live reading needs in its pool before it is shown (the first ends at MIN_WINDOW_S, one a
#: second after: 10 windows is 15 s of face).
LIVE_MIN_WINDOWS = 10
#: A pulse this clear (median window SNR at the pooled rate, dB, with no rival peak) is shown from
#: :data:`LIVE_FAST_WINDOWS` windows on (8 s of face) instead of waiting for the full pool. Real webcam pulses sit
#: near 0 dB, and so do the artefacts that lead their first windows, so they wait.
LIVE_FAST_SNR_DB = 3.0
LIVE_FAST_WINDOWS = 3


def pooled_window_estimate(
    pulse: np.ndarray, rgb: np.ndarray | None, *, sampling_rate: float, t0_s: float = 0.0,
    pool_s: float = LIVE_POOL_S, min_windows: int = LIVE_MIN_WINDOWS,
) -> WindowEstimate | None:
    """The live reading: the peaks of the mean of the last ``pool_s`` seconds' window spectra.

    One 10 s window of a sub-1 % pulse is often led by an artefact (head motion, lighting, the codec): on the
    PhysRecorder webcam recording (oximeter 68-72 beats/min all along) a quarter to a third of the lossless
    file's windows read 50-60 and its WebRTC copy's 41-47, with window confidences up to 0.8. The pulse holds
    its rate through the pool while artefacts come and go, so the pooled spectrum's peak stays on the pulse.
    Its confidence is the clip report's (:func:`path_confidence`: the windows' SNR at the pooled rate, the
    colour of the variation at that rate over the pool, and its margin over the camera's noise floor, so a still
    face shows nothing), so a live value and the report agree on what is
    trustworthy. The price is lag: a rate change shows in full after about ``pool_s / 2`` seconds.

    Parameters
    ----------
    pulse : ndarray, shape (n,)
        The current face run's pulse on an even grid starting at ``t0_s`` (its last ``pool_s`` seconds are used).
    rgb : ndarray, shape (n, 3), optional
        The matching skin colours (for the colour part of the confidence; 0.5 without).
    sampling_rate : float
        In Hz (samples/second).

    Returns None while fewer than ``min_windows`` windows are in the pool (fewer than :data:`LIVE_FAST_WINDOWS`
    for a clear pulse: see :data:`LIVE_FAST_SNR_DB`).
    """
    drop = max(0, len(pulse) - int(round(pool_s * sampling_rate)))
    pulse, t0_s = pulse[drop:], t0_s + drop / sampling_rate
    rgb = None if rgb is None else rgb[drop:]
    times, spectra, raw = window_spectra(pulse, sampling_rate=sampling_rate, t0_s=t0_s)
    if len(times) == 0:
        return None
    recent = times >= times[-1] - (pool_s - WINDOW_S) - 1e-9
    times, spectra = times[recent], spectra[recent]
    raw = [pair for pair, keep_it in zip(raw, recent, strict=True) if keep_it]
    if len(times) < min(min_windows, LIVE_FAST_WINDOWS):
        return None
    pooled = spectra.mean(axis=0)
    grid_hz = PATH_GRID_BPM / 60.0
    peaks = spectral_peaks(grid_hz, pooled)
    best = resolve_harmonics(peaks, noise_floor=float(np.median(pooled)))
    if best is None:
        return WindowEstimate(float(times[-1]), None, (), -60.0, None, 0.0)
    snr = np.array([pulse_snr_db(freqs, power, best.bpm) for freqs, power in raw])
    dominance = pooled_dominance(best, peaks)
    if len(times) < min_windows and not (np.median(snr) >= LIVE_FAST_SNR_DB and dominance >= 1.0):
        return None
    rates = np.full(len(times), best.bpm)
    covariance = None if rgb is None else path_covariance(rgb, times, rates, sampling_rate=sampling_rate, t0_s=t0_s)
    margins = None if rgb is None else path_floor_margins(rgb, times, rates, sampling_rate=sampling_rate, t0_s=t0_s)
    path = RatePath(times, rates, snr, covariance, None, margins)   # the pulse must clear the noise floor live too
    ordered = (best,) + tuple(p for p in peaks if p is not best)
    confidence = path_confidence(path) * dominance
    return WindowEstimate(float(times[-1]), best.bpm, ordered, float(np.median(snr)), path.signature, confidence)


#: Pooled-spectrum dominance: a rival peak (> :data:`RIVAL_SEPARATION_BPM` away, not the pulse's harmonic) with
#: this share of the chosen peak's power or less leaves the confidence whole; at 1.0 (a tie) it is zero.
RIVAL_RATIO = (0.7, 1.0)
RIVAL_SEPARATION_BPM = 6.0


def pooled_dominance(best: SpectralPeak, peaks: list[SpectralPeak]) -> float:
    """0..1: how clearly ``best`` leads the pooled spectrum. Two rhythms of near equal weight over the pool (the
    pulse and an artefact taking turns) mean the pool cannot tell which is the pulse: better no number."""
    rivals = [p.power for p in peaks if p is not best and abs(p.bpm - best.bpm) > RIVAL_SEPARATION_BPM
              and abs(p.bpm - 2.0 * best.bpm) > max(3.0, 0.03 * best.bpm)]
    ratio = max(rivals, default=0.0) / max(best.power, 1e-300)
    low, high = RIVAL_RATIO
    return float(np.clip((high - ratio) / (high - low), 0.0, 1.0))


def pooled_reading(estimate: WindowEstimate) -> HeartRateReading:
    """The live reading of a :func:`pooled_window_estimate`: its rate, gated on its confidence (no tracker: the
    30 s pool already carries the continuity, and a tracker started on an early artefact would hold it)."""
    return gated_reading(estimate.t_end_s, estimate.bpm, estimate)
