"""Heart-rate variability from the pulse wave: beats, inter-beat-interval cleaning, time and frequency indices.

Beats are the systolic peaks of the blood-volume-oriented pulse (:func:`smartmirror.vitals.rppg.extract_pulse`),
timed to a fraction of a sample by a least-squares parabola over the peak. Intervals outside 40-200 beats/min
or more than
:data:`MAX_RELATIVE_DEVIATION` away from their neighbours' median are dropped (missed or extra beats).
SDNN, RMSSD and pNN50 (by NeuroKit2's ``hrv_time`` definitions, :func:`time_domain`) need :data:`MIN_CLEAN_S`
of clean intervals; LF/HF (NeuroKit2's ``hrv_frequency``) needs :data:`MIN_LF_HF_S`; otherwise they are None.
Baevsky's stress index is computed here (NeuroKit2 has none) with 50 ms bins.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

from smartmirror.vitals.signal import bandpass
from smartmirror.vitals.spectrum import HR_BAND_BPM

#: Seconds of clean intervals before SDNN, RMSSD, pNN50 and the stress index are reported.
MIN_CLEAN_S = 30.0
#: Seconds of clean intervals before LF/HF is reported (the LF band needs 25 s cycles, several of them).
MIN_LF_HF_S = 120.0
#: An interval further than this fraction from the median of its neighbours is an artefact.
MAX_RELATIVE_DEVIATION = 0.25
#: Upper edge of the band the beats are found in, Hz (keeps the second and third harmonics of most rates).
BEAT_BAND_HIGH_HZ = 5.0
#: Half-width of the parabola fitted to each peak, as a fraction of the beat interval.
PEAK_FIT_FRACTION = 0.06
#: Histogram bin of Baevsky's stress index, milliseconds.
STRESS_INDEX_BIN_MS = 50.0


@dataclass(frozen=True)
class HRV:
    """Heart-rate variability indices (None where not enough clean data).

    Attributes
    ----------
    sdnn_ms : float | None
        Standard deviation of the clean inter-beat intervals, ms.
    rmssd_ms : float | None
        Root mean square of successive interval differences, ms.
    pnn50 : float | None
        Percentage (0..100) of successive differences above 50 ms.
    lf_hf : float | None
        Ratio of low- (0.04-0.15 Hz) to high-frequency (0.15-0.4 Hz) power; only with >= 120 s of clean beats.
    stress_index : float | None
        Baevsky's stress index ``AMo / (2 Mo MxDMn)`` (AMo in %, Mo and MxDMn in s), 50 ms bins.
    clean_s : float
        Seconds covered by clean intervals.
    beats : int
        Beats detected.
    """

    sdnn_ms: float | None
    rmssd_ms: float | None
    pnn50: float | None
    lf_hf: float | None
    stress_index: float | None
    clean_s: float
    beats: int

    def report(self) -> dict:
        """The report's ``hrv`` section."""
        return {k: v for k, v in asdict(self).items() if k in ("sdnn_ms", "rmssd_ms", "pnn50", "lf_hf", "stress_index")}


def detect_beats(pulse: np.ndarray, *, sampling_rate: float, heart_rate_bpm: float | None = None,
                 t0_s: float = 0.0) -> np.ndarray:
    """Systolic peak times (seconds) of a blood-volume-oriented pulse on an even grid.

    Parameters
    ----------
    pulse : ndarray, shape (n,)
        Pulse with peaks at systole (more blood), even grid.
    sampling_rate : float
        In Hz (samples/second).
    heart_rate_bpm : float, optional
        The known rate; it sets the filter band and the shortest allowed spacing of peaks.
    t0_s : float
        Time of the first sample.
    """
    from scipy.signal import find_peaks

    pulse = np.asarray(pulse, dtype=np.float64)
    if len(pulse) < int(2 * sampling_rate):
        return np.zeros(0)
    # A wide band keeps the waveform's shape (its harmonics): narrow filters smear each beat into its neighbours
    # and shrink the beat-to-beat differences that RMSSD measures; much wider lets noise move the peaks.
    f0 = (heart_rate_bpm or 72.0) / 60.0
    low = max(0.4, 0.5 * f0) if heart_rate_bpm else 0.5
    filtered = bandpass(pulse, sampling_rate=sampling_rate, low_hz=low, high_hz=min(BEAT_BAND_HIGH_HZ,
                                                                                    0.45 * sampling_rate))
    fastest = min(heart_rate_bpm * 1.4, HR_BAND_BPM[1]) if heart_rate_bpm else HR_BAND_BPM[1]
    distance = max(1, int(sampling_rate * 60.0 / fastest))
    spread = np.percentile(filtered, 95) - np.percentile(filtered, 5)
    peaks, _ = find_peaks(filtered, distance=distance, prominence=0.25 * spread)
    # each peak: least-squares parabola over +-6 % of a beat (at least 2 samples a side), robust to noise
    half = max(2, int(round(PEAK_FIT_FRACTION * sampling_rate / f0)))
    times = []
    for index in peaks:
        start, stop = max(0, index - half), min(len(filtered), index + half + 1)
        offsets = np.arange(start, stop) - index
        curvature, slope, _ = np.polyfit(offsets, filtered[start:stop], 2)
        shift = -slope / (2 * curvature) if curvature < 0 else 0.0
        times.append(index + float(np.clip(shift, -half, half)))
    return t0_s + np.asarray(times) / sampling_rate


def clean_intervals(beat_times_s: np.ndarray, *, window: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Inter-beat intervals (ms) and their end times (s), artefacts removed.

    An interval is kept when it lies in 40-200 beats/min and within :data:`MAX_RELATIVE_DEVIATION` of the
    median of the ``2 * window + 1`` intervals around it.
    """
    beats = np.asarray(beat_times_s, dtype=np.float64)
    if len(beats) < 3:
        return np.zeros(0), np.zeros(0)
    ibi = np.diff(beats) * 1000.0
    ends = beats[1:]
    plausible = (ibi >= 60000.0 / HR_BAND_BPM[1]) & (ibi <= 60000.0 / HR_BAND_BPM[0])
    keep = plausible.copy()
    for i in np.flatnonzero(plausible):
        neighbours = ibi[max(0, i - window):i + window + 1]
        neighbours = neighbours[plausible[max(0, i - window):i + window + 1]]
        median = np.median(neighbours)
        if abs(ibi[i] - median) > MAX_RELATIVE_DEVIATION * median:
            keep[i] = False
    return ibi[keep], ends[keep]


def stress_index(ibi_ms: np.ndarray, *, bin_ms: float = STRESS_INDEX_BIN_MS) -> float | None:
    """Baevsky's stress index: ``AMo / (2 * Mo * MxDMn)``.

    Mo is the mode (centre of the fullest ``bin_ms`` bin, seconds), AMo the percentage of intervals in that bin,
    MxDMn the range of intervals (seconds). Typical rest values are 50-150; above 500 means strong strain.
    """
    ibi_ms = np.asarray(ibi_ms, dtype=np.float64)
    if len(ibi_ms) < 10:
        return None
    low = np.floor(ibi_ms.min() / bin_ms) * bin_ms
    edges = low + bin_ms * np.arange(int((ibi_ms.max() - low) // bin_ms) + 2)  # [a, b) bins; the last holds max
    counts, edges = np.histogram(ibi_ms, bins=edges)
    k = int(np.argmax(counts))
    mode_s = (edges[k] + edges[k + 1]) / 2000.0
    amplitude_mode = 100.0 * counts[k] / len(ibi_ms)
    spread_s = max((ibi_ms.max() - ibi_ms.min()) / 1000.0, bin_ms / 1000.0)
    return float(amplitude_mode / (2.0 * mode_s * spread_s))


#: Two intervals are successive when the time between their ends differs from the later one by at most this (ms),
#: NeuroKit2's rule (``intervals_successive``, ``thresh_unequal``).
SUCCESSIVE_TOLERANCE_MS = 10.0


def time_domain(ibi_ms: np.ndarray, ends_s: np.ndarray) -> tuple[float, float, float]:
    """SDNN (ms), RMSSD (ms) and pNN50 (%) of intervals (ms) ending at ``ends_s`` (s), NaN where undefined.

    NeuroKit2 0.2.12's ``hrv_time`` definitions for finite intervals with their times (``tests/test_vitals_hrv.py``
    checks them against it): SDNN with one degree of freedom; the successive differences only between intervals
    that follow each other (the ends ``SUCCESSIVE_TOLERANCE_MS`` from one interval apart; none span a removed
    artefact or a face gap) when some but not all do and the ends are not evenly spaced; pNN50 over that count
    plus one. Computed here because importing NeuroKit2 costs 2.5 s of CPU per process (it loads scikit-learn and
    pandas), most of a short clip's report; it is imported for LF/HF only (recordings of 2 minutes or more).
    """
    ibi = np.asarray(ibi_ms, dtype=np.float64)
    ends = np.asarray(ends_s, dtype=np.float64)
    differences = np.diff(ibi)
    successive = np.abs(np.diff(ends) * 1000.0 - ibi[1:]) <= SUCCESSIVE_TOLERANCE_MS
    evenly_spaced = len(np.unique(np.round(np.diff(ends), decimals=3))) == 1
    if not successive.all() and successive.any() and not evenly_spaced:
        differences = differences[successive]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # too few intervals: NaN, as NeuroKit2 gives
        sdnn = float(np.nanstd(ibi, ddof=1))
        rmssd = float(np.sqrt(np.nanmean(differences ** 2)))
    pnn50 = float(np.sum(np.abs(differences) > 50.0) / (len(differences) + 1) * 100.0)
    return sdnn, rmssd, pnn50


def hrv_from_beats(beat_times_s: np.ndarray | list[np.ndarray], *, min_clean_s: float = MIN_CLEAN_S,
                   min_lf_hf_s: float = MIN_LF_HF_S) -> HRV:
    """HRV indices from beat times (seconds), or from a list of such arrays (separate face segments: no interval
    bridges two segments); None for the indices that lack clean data."""
    segments = beat_times_s if isinstance(beat_times_s, list) else [beat_times_s]
    cleaned = [clean_intervals(np.asarray(s, dtype=np.float64)) for s in segments]
    ibi = np.concatenate([c[0] for c in cleaned]) if cleaned else np.zeros(0)
    ends = np.concatenate([c[1] for c in cleaned]) if cleaned else np.zeros(0)
    beats = np.zeros(sum(len(s) for s in segments))
    clean_s = float(ibi.sum() / 1000.0)
    if clean_s < min_clean_s or len(ibi) < 10:
        return HRV(None, None, None, None, None, round(clean_s, 1), len(beats))
    sdnn, rmssd, pnn50 = time_domain(ibi, ends)
    lf_hf = None
    if clean_s >= min_lf_hf_s:
        import neurokit2 as nk

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frequency = nk.hrv_frequency({"RRI": ibi, "RRI_Time": ends}, psd_method="welch", normalize=False)
        value = float(frequency["HRV_LFHF"].iloc[0])
        lf_hf = round(value, 3) if np.isfinite(value) else None
    index = stress_index(ibi)
    return HRV(
        sdnn_ms=round(sdnn, 1) if np.isfinite(sdnn) else None,
        rmssd_ms=round(rmssd, 1) if np.isfinite(rmssd) else None,
        pnn50=round(pnn50, 1) if np.isfinite(pnn50) else None,
        lf_hf=lf_hf,
        stress_index=None if index is None else round(index, 1),
        clean_s=round(clean_s, 1),
        beats=len(beats),
    )
