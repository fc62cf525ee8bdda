"""The live heart rate: the peaks of the mean of the last 30 s of window spectra, rated as the clip report's path.

:func:`pooled_runs_estimate` pools (over the runs of face data between stalls), :func:`pooled_dominance` asks
that no rival rhythm ties the pulse, :func:`pooled_reading` gates the result at
:data:`smartmirror.vitals.heart.CONFIDENCE_GATE`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from smartmirror.vitals.heart import WINDOW_S, HeartRateReading, WindowEstimate, gated_reading
from smartmirror.vitals.noise_floor import path_floor_margins
from smartmirror.vitals.rate_path import PATH_GRID_BPM, RatePath, path_confidence, path_covariance, window_spectra
from smartmirror.vitals.spectrum import SpectralPeak, pulse_snr_db, resolve_harmonics, spectral_peaks

#: Seconds of face data whose window spectra the live reading pools (:func:`pooled_runs_estimate`).
LIVE_POOL_S = 30.0
#: Sliding windows the live reading needs in its pool before it is shown (the first ends at MIN_WINDOW_S, one a
#: second after: 10 windows is 15 s of face).
LIVE_MIN_WINDOWS = 10
#: A pulse this clear (median window SNR at the pooled rate, dB, with no rival peak) is shown from
#: :data:`LIVE_FAST_WINDOWS` windows on (8 s of face) instead of waiting for the full pool. Real webcam pulses sit
#: near 0 dB, and so do the artefacts that lead their first windows, so they wait.
LIVE_FAST_SNR_DB = 3.0
LIVE_FAST_WINDOWS = 3


@dataclass(frozen=True)
class PulseRun:
    """One unbroken stretch of pulse on an even grid: ``pulse`` (n,), its skin colours ``rgb`` (n, 3) or None,
    and the time of its first sample ``t0_s`` (seconds)."""

    pulse: np.ndarray
    rgb: np.ndarray | None
    t0_s: float


def pooled_window_estimate(
    pulse: np.ndarray, rgb: np.ndarray | None, *, sampling_rate: float, t0_s: float = 0.0,
    pool_s: float = LIVE_POOL_S, min_windows: int = LIVE_MIN_WINDOWS,
) -> WindowEstimate | None:
    """The live reading of one unbroken run of pulse: :func:`pooled_runs_estimate` of ``[PulseRun(pulse, rgb,
    t0_s)]``."""
    return pooled_runs_estimate([PulseRun(pulse, rgb, t0_s)], sampling_rate=sampling_rate, pool_s=pool_s,
                                min_windows=min_windows)


def pooled_runs_estimate(
    runs: Sequence[PulseRun], *, sampling_rate: float, pool_s: float = LIVE_POOL_S,
    min_windows: int = LIVE_MIN_WINDOWS,
) -> WindowEstimate | None:
    """The live reading: the peaks of the mean of the window spectra that end in the last ``pool_s`` seconds.

    One 10 s window of a sub-1 % pulse is often led by an artefact (head motion, lighting, the codec): on the
    PhysRecorder webcam recording (oximeter 68-72 beats/min all along) a quarter to a third of the lossless
    file's windows read 50-60 and its WebRTC copy's 41-47, with window confidences up to 0.8. The pulse holds
    its rate through the pool while artefacts come and go, so the pooled spectrum's peak stays on the pulse.
    Its confidence is the clip report's (:func:`path_confidence`: the windows' SNR at the pooled rate, the
    colour of the variation at that rate over the pool, and its margin over the camera's noise floor, so a still
    face shows nothing), so a live value and the report agree on what is
    trustworthy. The price is lag: a rate change shows in full after about ``pool_s / 2`` seconds.

    The windows may come from several runs (``runs``, in time order): a stall of the live stream longer than
    :data:`smartmirror.vitals.pipeline.MAX_GAP_S` splits the face data, and no window spans the gap, but the
    windows before it still count, so a stall of a second or two does not restart the pool.

    Parameters
    ----------
    runs : sequence of PulseRun
        The pulse runs (each on an even grid of ``sampling_rate``); runs shorter than one window add nothing.
    sampling_rate : float
        In Hz (samples/second).

    Returns None while fewer than ``min_windows`` windows are in the pool (fewer than :data:`LIVE_FAST_WINDOWS`
    for a clear pulse: see :data:`LIVE_FAST_SNR_DB`).
    """
    keep = int(round(pool_s * sampling_rate))
    per_run = []
    for run in runs:
        times, spectra, raw = window_spectra(run.pulse[-keep:], sampling_rate=sampling_rate,
                                             t0_s=run.t0_s + max(0, len(run.pulse) - keep) / sampling_rate)
        if len(times):
            per_run.append((run, times, spectra, raw))
    if not per_run:
        return None
    latest = per_run[-1][1][-1]
    pool = []
    for run, times, spectra, raw in per_run:
        recent = times >= latest - (pool_s - WINDOW_S) - 1e-9
        if recent.any():
            pool.append((run, times[recent], spectra[recent], [pair for pair, k in zip(raw, recent, strict=True) if k]))
    times = np.concatenate([p[1] for p in pool])
    if len(times) < min(min_windows, LIVE_FAST_WINDOWS):
        return None
    pooled = np.concatenate([p[2] for p in pool]).mean(axis=0)
    grid_hz = PATH_GRID_BPM / 60.0
    peaks = spectral_peaks(grid_hz, pooled)
    best = resolve_harmonics(peaks, noise_floor=float(np.median(pooled)))
    if best is None:
        return WindowEstimate(float(times[-1]), None, (), -60.0, None, 0.0)
    snr = np.array([pulse_snr_db(freqs, power, best.bpm) for p in pool for freqs, power in p[3]])
    dominance = pooled_dominance(best, peaks)
    if len(times) < min_windows and not (np.median(snr) >= LIVE_FAST_SNR_DB and dominance >= 1.0):
        return None
    with_colour = all(run.rgb is not None for run, *_ in pool)
    covariance = margins = None
    if with_colour:  # each run's windows measured on its own colours (the pulse must clear the noise floor live too)
        covariance = np.zeros((3, 3))
        margin_parts = []
        for run, run_times, _, _ in pool:
            rates = np.full(len(run_times), best.bpm)
            run_t0 = run.t0_s + max(0, len(run.pulse) - keep) / sampling_rate
            rgb = run.rgb[-keep:]
            covariance += path_covariance(rgb, run_times, rates, sampling_rate=sampling_rate, t0_s=run_t0)
            margin_parts.append(path_floor_margins(rgb, run_times, rates, sampling_rate=sampling_rate, t0_s=run_t0))
        margins = np.concatenate(margin_parts)
    path = RatePath(times, np.full(len(times), best.bpm), snr, covariance, None, margins)
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
    """The live reading of a :func:`pooled_runs_estimate`: its rate, gated on its confidence (no tracker: the
    30 s pool already carries the continuity, and a tracker started on an early artefact would hold it)."""
    return gated_reading(estimate.t_end_s, estimate.bpm, estimate)
