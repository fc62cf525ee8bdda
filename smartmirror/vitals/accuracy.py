"""Accuracy against a clip's ground truth: the reference heart rate of each window, and the pulse's shape error.

Pure numpy: the reference PPG (:class:`~smartmirror.vitals.ground_truth.GroundTruth`) resampled on the vitals
grid; heart rate by the same window reading the video gets (:func:`smartmirror.vitals.heart.estimate_window`).
"""

from __future__ import annotations

import math

import numpy as np

from smartmirror.vitals import heart
from smartmirror.vitals.ground_truth import GroundTruth
from smartmirror.vitals.rppg import PULSE_BAND_HZ
from smartmirror.vitals.signal import GRID_RATE_HZ, bandpass, resample_even

#: Largest time shift (seconds) searched when aligning the video pulse with the reference PPG (finger or ear
#: sensors see the pulse wave later or earlier than the face).
MAX_PULSE_LAG_S = 0.5


def _normalised(signal: np.ndarray) -> np.ndarray:
    span = float(np.max(signal) - np.min(signal)) if len(signal) else 0.0
    return (signal - np.min(signal)) / span if span > 0 else np.zeros_like(signal)


def pulse_errors(times_s: np.ndarray, pulse: np.ndarray, truth: GroundTruth) -> tuple[float | None, float | None]:
    """MAE and RMSE between the [0, 1]-scaled pulse and the [0, 1]-scaled band-passed reference PPG.

    The reference is resampled at the pulse's times; the polarity and a lag of up to
    :data:`MAX_PULSE_LAG_S` are chosen to minimise the RMSE (sensor sites and polarity conventions differ).
    """
    inside = (times_s >= truth.times_s[0]) & (times_s <= truth.times_s[-1])
    if inside.sum() < 2 * GRID_RATE_HZ:
        return None, None
    grid, reference = resample_even(truth.times_s, truth.ppg, rate_hz=GRID_RATE_HZ)
    reference = bandpass(reference, sampling_rate=GRID_RATE_HZ, low_hz=PULSE_BAND_HZ[0], high_hz=PULSE_BAND_HZ[1])
    pred = _normalised(pulse[inside])
    best = (math.inf, math.inf)
    for lag in np.arange(-MAX_PULSE_LAG_S, MAX_PULSE_LAG_S + 1e-9, 1.0 / GRID_RATE_HZ):
        ref = np.interp(times_s[inside] + lag, grid, reference)
        for sign in (1.0, -1.0):
            diff = pred - _normalised(sign * ref)
            rmse = float(np.sqrt(np.mean(diff**2)))
            if rmse < best[1]:
                best = (float(np.mean(np.abs(diff))), rmse)
    return round(best[0], 4), round(best[1], 4)


def reference_heart_rates(truth: GroundTruth, window_ends_s: np.ndarray) -> np.ndarray:
    """The reference heart rate of each 10 s window ending at ``window_ends_s`` (spectral peak of the PPG).

    Falls back to the mean of the device's heart-rate line when the PPG window has no clear peak.
    """
    grid, ppg = resample_even(truth.times_s, truth.ppg, rate_hz=GRID_RATE_HZ)
    rates = []
    for end in window_ends_s:
        pick = (grid > end - heart.WINDOW_S) & (grid <= end)
        rate = None
        if pick.sum() >= heart.MIN_WINDOW_S * GRID_RATE_HZ * 0.9:
            estimate = heart.estimate_window(ppg[pick], None, sampling_rate=GRID_RATE_HZ, t_end_s=end)
            rate = estimate.bpm if estimate.snr_db > -3.0 else None
        if rate is None and truth.heart_rate_bpm is not None:
            near = (truth.times_s > end - heart.WINDOW_S) & (truth.times_s <= end)
            values = truth.heart_rate_bpm[near]
            values = values[(values >= 30) & (values <= 240)]
            rate = float(values.mean()) if len(values) else None
        rates.append(np.nan if rate is None else rate)
    return np.asarray(rates, dtype=np.float64)
