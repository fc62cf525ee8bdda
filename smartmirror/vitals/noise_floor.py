"""The camera's own noise floor: how far the blood-coloured variation at the rate stands above it, and its score.

A pulse of 0.1-1 % over thousands of skin pixels stands far above the sensor and compression noise of a face's
colour; a still photo's pulse band holds only that noise. :func:`noise_floor_margin_db` measures one window,
:func:`floor_margin_score` rates a path's margins for :func:`smartmirror.vitals.rate_path.path_confidence`.
"""

from __future__ import annotations

import numpy as np

from smartmirror.vitals.colour_signature import PBV_SIGNATURE_RGB
from smartmirror.vitals.heart import WINDOW_S
from smartmirror.vitals.signal import normalise_channels

#: Band (Hz) where a face's colour holds no physiology, only the camera's own noise (sensor, compression): above
#: the heart rate and most of its harmonics, below the 30 Hz grid's Nyquist frequency.
NOISE_FLOOR_BAND_HZ = (5.0, 12.0)
#: Blood-volume colour power at the path's rate over the camera's noise floor (dB, median over the windows) at which
#: :func:`floor_margin_score` starts to rise from 0, and where it reaches 1. Calibrated on real video: every UBFC-rPPG
#: subject (H.264), PhysRecorder and a webcam clip have medians of 17.7-28.5 dB; still photos of faces with camera
#: noise, H.264-encoded (whose tracker jitter and encoder pulsing make periodic, blood-coloured variation), 9.6-11.3
#: dB; the same real colours shuffled in time 7.4 dB.
PATH_FLOOR_MARGIN_DB = (12.0, 16.0)


def noise_floor_margin_db(rgb: np.ndarray, *, sampling_rate: float, bpm: float, half_width_hz: float = 0.1
                          ) -> float | None:
    """How far the colour variation at ``bpm`` stands above the camera's own noise floor, dB.

    The normalised (AC/DC) colours are projected on the blood-volume direction; of that signal's periodogram (Hann,
    linear detrend), the peak within ``half_width_hz`` of the rate is compared with the median over
    :data:`NOISE_FLOOR_BAND_HZ`, where a face's colour carries only sensor and compression noise. A pulse of
    0.1-1 % over thousands of skin pixels stands far above that floor; on a still photo everything in the pulse band
    *is* that noise (or tracker and encoder artefacts near its level), however periodic the strongest peak looks.
    None for too short or non-finite input, or a grid too coarse for the band.
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    if len(rgb) < 16 or not np.all(np.isfinite(rgb)) or sampling_rate / 2.0 <= NOISE_FLOOR_BAND_HZ[0]:
        return None
    from scipy.signal import periodogram

    blood = normalise_channels(rgb) @ (PBV_SIGNATURE_RGB / np.linalg.norm(PBV_SIGNATURE_RGB))
    nfft = 1 << int(np.ceil(np.log2(max(len(rgb), sampling_rate * 60.0 / 0.5))))
    freqs, power = periodogram(blood, fs=sampling_rate, window="hann", nfft=nfft, detrend="linear")
    near = np.abs(freqs - bpm / 60.0) <= half_width_hz
    floor_band = (freqs >= NOISE_FLOOR_BAND_HZ[0]) & (freqs <= min(NOISE_FLOOR_BAND_HZ[1], 0.45 * sampling_rate))
    if not near.any() or not floor_band.any():
        return None
    floor = float(np.median(power[floor_band]))
    peak = float(power[near].max())
    if floor <= 0:
        return 60.0 if peak > 0 else None
    return float(np.clip(10.0 * np.log10(max(peak, 1e-300) / floor), -60.0, 60.0))


def path_floor_margins(rgb: np.ndarray, times: np.ndarray, bpm: np.ndarray, *, sampling_rate: float,
                        t0_s: float) -> np.ndarray:
    """:func:`noise_floor_margin_db` of each path window at the path's rate (NaN where it has none)."""
    window = min(int(round(WINDOW_S * sampling_rate)), len(rgb))
    margins = []
    for t_end, rate in zip(times, bpm, strict=True):
        end = int(round((t_end - t0_s) * sampling_rate)) + 1
        margin = noise_floor_margin_db(rgb[max(end - window, 0):end], sampling_rate=sampling_rate, bpm=float(rate))
        margins.append(np.nan if margin is None else margin)
    return np.asarray(margins, dtype=np.float64)


def floor_margin_score(margins_db: np.ndarray | None) -> float:
    """0..1 from the median of a path's :func:`noise_floor_margin_db` values (1 without any: not measured)."""
    if margins_db is None:
        return 1.0
    finite = np.asarray(margins_db, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        return 1.0
    low, high = PATH_FLOOR_MARGIN_DB
    return float(np.clip((float(np.median(finite)) - low) / (high - low), 0.0, 1.0))
