"""Respiration rate from the pulse's respiratory modulations fused with the head's vertical breathing motion.

Breathing shows up in face video four ways (Karlen et al. 2013 name the first three):

- baseline wander (``baseline``): the skin's mean colour rises and falls with venous return;
- amplitude modulation (``amplitude``): the pulse's beat-to-beat height;
- frequency modulation (``frequency``): respiratory sinus arrhythmia, the beat-to-beat interval;
- ``motion``: the face's landmarks move up and down with the chest.

Each is resampled to 4 Hz, band-passed, and turned into a spectrum over 6-30 breaths/min. The spectra are
normalised, weighted by how peaked each is, and summed; the fused spectrum's peak is the rate. A modality
that says nothing (a flat spectrum) hardly counts, so the fusion survives one or two failing. No rate before
:data:`MIN_RESPIRATION_S` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from smartmirror.vitals.signal import bandpass

RESPIRATION_BAND_BPM = (6.0, 30.0)
#: Seconds of continuous face data before a respiration rate is reported.
MIN_RESPIRATION_S = 20.0
#: Resampling rate of the respiratory series, Hz.
SERIES_RATE_HZ = 4.0
#: Below this fused concentration (0..1) the rate is None.
RESPIRATION_CONFIDENCE_GATE = 0.25


@dataclass(frozen=True)
class RespirationEstimate:
    """Respiration rate and where it came from."""

    rate_bpm: float | None                 # breaths per minute; None when not measurable
    confidence: float                      # 0..1: share of fused power at the peak
    sources: dict[str, float] = field(default_factory=dict)  # each modality's own peak, breaths/min


def _series_spectrum(times_s: np.ndarray, values: np.ndarray, t_start: float, t_end: float
                     ) -> tuple[np.ndarray, np.ndarray] | None:
    """Resample one respiratory series to 4 Hz and return its band spectrum (freqs_hz, normalised power)."""
    from scipy.signal import periodogram

    times_s = np.asarray(times_s, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    good = np.isfinite(values)
    times_s, values = times_s[good], values[good]
    if len(times_s) < 6 or times_s[-1] - times_s[0] < 0.6 * (t_end - t_start):
        return None
    grid = np.arange(t_start, t_end, 1.0 / SERIES_RATE_HZ)
    series = np.interp(grid, times_s, values)
    low, high = RESPIRATION_BAND_BPM[0] / 60.0, RESPIRATION_BAND_BPM[1] / 60.0
    series = bandpass(series, sampling_rate=SERIES_RATE_HZ, low_hz=0.7 * low, high_hz=min(1.3 * high, 0.9),
                      order=2)
    if not np.any(series):
        return None
    nfft = 1 << int(np.ceil(np.log2(max(len(series), 60.0 * SERIES_RATE_HZ / 0.1))))
    freqs, power = periodogram(series, fs=SERIES_RATE_HZ, window="hann", nfft=nfft)
    band = (freqs >= low) & (freqs <= high)
    total = power[band].sum()
    if total <= 0:
        return None
    return freqs[band], power[band] / total


def _concentration(freqs: np.ndarray, power: np.ndarray, half_width_hz: float = 0.03) -> tuple[float, float]:
    """(peak frequency, share of the normalised power within ``half_width_hz`` of it)."""
    k = int(np.argmax(power))
    peak_hz = float(freqs[k])
    if 0 < k < len(power) - 1:
        left, centre, right = power[k - 1:k + 2]
        denominator = left - 2 * centre + right
        if denominator < 0:
            peak_hz += float(np.clip(0.5 * (left - right) / denominator, -0.5, 0.5)) * (freqs[1] - freqs[0])
    share = float(power[np.abs(freqs - peak_hz) <= half_width_hz].sum() / max(power.sum(), 1e-12))
    return peak_hz, share


def respiratory_series(
    grid_s: np.ndarray, green: np.ndarray, pulse: np.ndarray, beat_times_s: np.ndarray, *, sampling_rate: float,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The three pulse-derived respiratory series as (times_s, values).

    Parameters
    ----------
    grid_s : ndarray, shape (n,)
        Even grid times.
    green : ndarray, shape (n,)
        Relative green-channel change on the grid (baseline wander).
    pulse : ndarray, shape (n,)
        Blood-volume-oriented pulse on the grid.
    beat_times_s : ndarray
        Systolic peak times.
    sampling_rate : float
        Grid rate, Hz.
    """
    series: dict[str, tuple[np.ndarray, np.ndarray]] = {"baseline": (grid_s, np.asarray(green, dtype=np.float64))}
    beats = np.asarray(beat_times_s, dtype=np.float64)
    if len(beats) >= 6:
        filtered = bandpass(pulse, sampling_rate=sampling_rate, low_hz=0.5, high_hz=min(6.0, 0.45 * sampling_rate))
        peak_values = np.interp(beats, grid_s, filtered)
        troughs = []
        for previous, current in zip(beats[:-1], beats[1:], strict=True):
            inside = (grid_s >= previous) & (grid_s <= current)
            troughs.append(filtered[inside].min() if inside.any() else np.nan)
        amplitude = peak_values[1:] - np.asarray(troughs)
        series["amplitude"] = (beats[1:], amplitude)
        intervals = np.diff(beats)
        median = np.median(intervals)
        intervals = np.where(np.abs(intervals - median) > 0.3 * median, np.nan, intervals)
        series["frequency"] = (beats[1:], intervals)
    return series


def respiration_rate(
    series: dict[str, tuple[np.ndarray, np.ndarray]], *, t_start: float, t_end: float,
    min_seconds: float = MIN_RESPIRATION_S,
) -> RespirationEstimate:
    """Fuse respiratory series (name -> (times_s, values)) into one rate in breaths/min.

    Each spectrum is weighted by the square of its concentration (a clean breathing rhythm puts most of its
    power in one peak; a flat, noisy spectrum gets little weight).
    """
    if t_end - t_start < min_seconds:
        return RespirationEstimate(None, 0.0)
    fused = None
    sources = {}
    freqs_ref = None
    for name, (times_s, values) in series.items():
        spectrum = _series_spectrum(times_s, values, t_start, t_end)
        if spectrum is None:
            continue
        freqs, power = spectrum
        peak_hz, share = _concentration(freqs, power)
        sources[name] = round(60.0 * peak_hz, 2)
        weight = share**2
        if fused is None:
            fused, freqs_ref = weight * power, freqs
        else:
            fused = fused + weight * np.interp(freqs_ref, freqs, power)
    if fused is None or fused.sum() <= 0:
        return RespirationEstimate(None, 0.0, sources)
    peak_hz, share = _concentration(freqs_ref, fused)
    rate = 60.0 * peak_hz
    if share < RESPIRATION_CONFIDENCE_GATE:
        return RespirationEstimate(None, round(share, 3), sources)
    return RespirationEstimate(round(rate, 1), round(share, 3), sources)
