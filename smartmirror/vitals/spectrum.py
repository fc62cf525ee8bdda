"""The pulse spectrum of one window: Welch power, its peaks in the heart-rate band, the harmonic check, the SNR.

1. :func:`pulse_spectrum`: Welch power spectrum with zero padding (bins of ~0.5 beats/min, refined by interpolation).
2. :func:`spectral_peaks`: local maxima in the 40-200 beats/min band, each refined to sub-bin precision by
   Gaussian (log-parabolic) interpolation.
3. :func:`resolve_harmonics`: when the strongest peak has a real peak at half its frequency, the strongest
   peak was the second harmonic (a dicrotic waveform), so the half is taken (a 2x error caught).
4. :func:`pulse_snr_db`: de Haan's SNR (power within 6 beats/min of the rate and of its harmonic, over the rest).

Pure numpy/scipy; the window reading that combines them is :func:`smartmirror.vitals.heart.estimate_window`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The heart-rate search band, beats/min.
HR_BAND_BPM = (40.0, 200.0)
#: A peak at half the strongest peak's frequency with at least this fraction of its power means the strongest
#: peak was the second harmonic.
HALF_PEAK_RATIO = 0.3


@dataclass(frozen=True)
class SpectralPeak:
    """One peak of the pulse spectrum."""

    bpm: float        # beats per minute, sub-bin interpolated
    power: float      # spectral power at the peak (arbitrary units)


def pulse_spectrum(
    pulse: np.ndarray, *, sampling_rate: float, segment_s: float | None = None, resolution_bpm: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectral density of a pulse signal, zero-padded for fine bins.

    Parameters
    ----------
    pulse : ndarray, shape (n,)
        Pulse on an even grid.
    sampling_rate : float
        In Hz (samples/second).
    segment_s : float, optional
        Welch segment length in seconds (default: the whole window, one Hann-tapered segment).
    resolution_bpm : float
        Bin spacing asked for, beats/min (the FFT is zero padded up to a power of two).

    Returns
    -------
    freqs_hz, power : ndarray
    """
    from scipy.signal import welch

    pulse = np.asarray(pulse, dtype=np.float64)
    nperseg = len(pulse) if segment_s is None else min(len(pulse), int(segment_s * sampling_rate))
    nfft = 1 << int(np.ceil(np.log2(max(nperseg, sampling_rate * 60.0 / resolution_bpm))))
    return welch(pulse, fs=sampling_rate, window="hann", nperseg=nperseg, noverlap=nperseg // 2, nfft=nfft,
                 detrend="linear")


def _interpolate_peak(freqs: np.ndarray, power: np.ndarray, index: int) -> tuple[float, float]:
    """Sub-bin peak by a parabola through the log power of the peak bin and its neighbours."""
    if index <= 0 or index >= len(power) - 1:
        return float(freqs[index]), float(power[index])
    left, centre, right = np.log(np.maximum(power[index - 1:index + 2], 1e-300))
    denominator = left - 2 * centre + right
    offset = 0.5 * (left - right) / denominator if denominator < 0 else 0.0
    offset = float(np.clip(offset, -0.5, 0.5))
    step = freqs[1] - freqs[0]
    peak_log = centre - 0.25 * (left - right) * offset
    return float(freqs[index] + offset * step), float(np.exp(peak_log))


def spectral_peaks(
    freqs: np.ndarray, power: np.ndarray, *, band_bpm: tuple[float, float] = HR_BAND_BPM, top: int = 5
) -> list[SpectralPeak]:
    """The strongest local maxima inside the band, strongest first, each sub-bin interpolated."""
    from scipy.signal import find_peaks

    low, high = band_bpm[0] / 60.0, band_bpm[1] / 60.0
    inside = np.flatnonzero((freqs >= low) & (freqs <= high))
    if len(inside) < 3:
        return []
    first, last = inside[0], inside[-1]
    segment = power[max(first - 1, 0):last + 2]
    offset = max(first - 1, 0)
    indices, _ = find_peaks(segment)
    indices = [i + offset for i in indices if first <= i + offset <= last]
    peaks = []
    for index in indices:
        hz, value = _interpolate_peak(freqs, power, index)
        if low <= hz <= high:
            peaks.append(SpectralPeak(bpm=hz * 60.0, power=value))
    peaks.sort(key=lambda p: p.power, reverse=True)
    return peaks[:top]


def resolve_harmonics(
    peaks: list[SpectralPeak], *, noise_floor: float, band_bpm: tuple[float, float] = HR_BAND_BPM
) -> SpectralPeak | None:
    """The fundamental among the peaks: the strongest, or the peak at half its rate when that one is real.

    A real half peak has at least :data:`HALF_PEAK_RATIO` of the strongest peak's power and stands above the
    noise floor; a pulse with a heavy dicrotic wave puts more power at twice the rate than at the rate itself.
    """
    if not peaks:
        return None
    strongest = peaks[0]
    half = strongest.bpm / 2.0
    if half >= band_bpm[0]:
        tolerance = max(3.0, 0.06 * half)
        near = [p for p in peaks[1:] if abs(p.bpm - half) <= tolerance]
        if near:
            candidate = max(near, key=lambda p: p.power)
            if candidate.power >= HALF_PEAK_RATIO * strongest.power and candidate.power >= 4.0 * noise_floor:
                return candidate
    return strongest


def pulse_snr_db(freqs: np.ndarray, power: np.ndarray, bpm: float, *, band_hz: tuple[float, float] = (0.6, 4.0)
                 ) -> float:
    """SNR in dB after de Haan & Jeanne (2013).

    Signal is the power within 0.1 Hz (6 beats/min) of the rate and within 0.2 Hz of its second harmonic;
    noise is the rest of the band.
    """
    f0 = bpm / 60.0
    in_band = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    near = (np.abs(freqs - f0) <= 0.1) | (np.abs(freqs - 2 * f0) <= 0.2)
    signal = float(power[in_band & near].sum())
    noise = float(power[in_band & ~near].sum())
    if signal <= 0:
        return -60.0
    if noise <= 0:
        return 60.0
    return float(np.clip(10.0 * np.log10(signal / noise), -60.0, 60.0))
