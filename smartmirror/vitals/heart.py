"""Heart rate from a pulse signal: Welch spectrum per window, harmonic check, continuity tracking, SNR, confidence.

The flow for one window (>= 10 s in steady state, sliding by 1 s):

1. :func:`pulse_spectrum`: Welch power spectrum with zero padding (bins of ~0.5 beats/min, refined by interpolation).
2. :func:`spectral_peaks`: local maxima in the 40-200 beats/min band, each refined to sub-bin precision by
   Gaussian (log-parabolic) interpolation.
3. :func:`resolve_harmonics`: when the strongest peak has a real peak at half its frequency, the strongest
   peak was the second harmonic (a dicrotic waveform), so the half is taken (a 2x error caught). The colour
   signature arbitrates both ways: a "half" that is not blood-coloured is an artefact (keep the strongest), and a
   strong peak at twice the rate that is blood-coloured while the chosen one is not means the chosen one was an
   artefact at half the rate (a 0.5x error caught). The tracker adds continuity across windows.
4. :func:`pulse_snr_db`: de Haan's SNR (power within 6 beats/min of the rate and of its harmonic, over the rest).
5. :func:`heart_rate_confidence`: 0..1 from the SNR and the pulse's colour signature (a real pulse varies along
   the blood-volume direction of the colour plane; noise and motion do not).
6. :class:`HeartRateTracker`: a Kalman filter on the rate that picks, among the window's peaks, the one that
   best continues the track, and re-acquires when a new rhythm persists.

Below :data:`CONFIDENCE_GATE` the reported heart rate is ``None``, not a guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from smartmirror.vitals.rppg import PBV_SIGNATURE_RGB
from smartmirror.vitals.signal import bandpass, normalise_channels

HR_BAND_BPM = (40.0, 200.0)
WINDOW_S = 10.0
STEP_S = 1.0
#: Seconds of face data before the first reading (the issue asks for one within 8 s of a face appearing).
MIN_WINDOW_S = 6.0
#: Readings below this confidence are reported as None.
CONFIDENCE_GATE = 0.5
#: SNR (dB) at which the SNR part of the confidence is 0.5, and its logistic scale (dB).
SNR_MIDPOINT_DB = -2.5
SNR_SCALE_DB = 1.5
#: A peak at half the strongest peak's frequency with at least this fraction of its power means the strongest
#: peak was the second harmonic.
HALF_PEAK_RATIO = 0.3
#: A peak at twice the chosen rate with at least this fraction of its power is a candidate for a 0.5x error;
#: the colour signature decides (blood pulses in the blood-volume direction, artefacts do not).
DOUBLE_PEAK_RATIO = 0.4

_PLANE = np.array([[1.0, -1.0, 0.0], [1.0, 1.0, -2.0]]) / np.array([[math.sqrt(2)], [math.sqrt(6)]])


@dataclass(frozen=True)
class SpectralPeak:
    """One peak of the pulse spectrum."""

    bpm: float        # beats per minute, sub-bin interpolated
    power: float      # spectral power at the peak (arbitrary units)


@dataclass(frozen=True)
class PulseSignature:
    """How the pulse band's colour variation lies in the plane orthogonal to intensity.

    Attributes
    ----------
    direction_cos : float
        |cos| of the angle between the main in-plane direction and the blood-volume signature's (1 = blood).
    colour_cos : float
        |cos| of the angle between the main 3-D colour direction and the signature: blood changes all three
        channels the same way (near 1), noise that happens to line up in the plane does not.
    anisotropy : float
        Share of in-plane variance along the main direction, 0.5 (isotropic noise) .. 1 (one clean source).
    planar_share : float
        Share of the variance that lies in the plane (not along intensity): about 0.1 for blood, near 0 for
        motion or lighting changes, which move all channels alike.
    amplitudes_rgb : ndarray, shape (3,)
        Relative (AC/DC) amplitude of each channel along the main 3-D direction of the band's variation.
    """

    direction_cos: float
    colour_cos: float
    anisotropy: float
    planar_share: float
    amplitudes_rgb: np.ndarray = field(repr=False)

    @property
    def score(self) -> float:
        """0..1: how much this looks like blood (1 = the blood-volume direction, one clean source)."""
        direction = np.clip((self.direction_cos - 0.6) / 0.3, 0.0, 1.0)
        colour = np.clip((self.colour_cos - 0.75) / 0.15, 0.0, 1.0)
        clean = np.clip((self.anisotropy - 0.55) / 0.25, 0.0, 1.0)
        return float(direction * colour * clean)


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


def pulse_signature(
    rgb: np.ndarray, *, sampling_rate: float, bpm: float, half_width_hz: float = 0.1
) -> PulseSignature | None:
    """The colour direction of the variation at the pulse rate (see :class:`PulseSignature`).

    The normalised (AC/DC) channels are Hann-windowed and Fourier transformed; the in-phase cross-spectral
    matrix within ``half_width_hz`` of the rate is the covariance of the channels at the pulse frequency only
    (motion and lighting at other frequencies do not enter). Its projection on the plane orthogonal to
    [1, 1, 1] (intensity, which motion and lighting change) gives the main direction and how dominant it is.
    A still photo, a screen or a print has no such variation: noise is isotropic and motion lies along
    intensity.
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    if len(rgb) < 16 or not np.all(np.isfinite(rgb)):
        return None
    from scipy.signal import detrend

    channels = detrend(normalise_channels(rgb), axis=0) * np.hanning(len(rgb))[:, None]
    nfft = 1 << int(np.ceil(np.log2(max(len(rgb), sampling_rate * 60.0 / 0.5))))
    spectrum = np.fft.rfft(channels, n=nfft, axis=0)
    freqs = np.fft.rfftfreq(nfft, d=1.0 / sampling_rate)
    near = np.abs(freqs - bpm / 60.0) <= half_width_hz
    if not near.any():
        return None
    selected = spectrum[near]
    covariance = np.real(selected.T @ np.conj(selected))
    in_plane = _PLANE @ covariance @ _PLANE.T
    values, vectors = np.linalg.eigh(in_plane)
    total = float(values.sum())
    if total <= 0:
        return None
    main = vectors[:, -1]
    signature = _PLANE @ PBV_SIGNATURE_RGB
    direction_cos = abs(float(main @ signature)) / float(np.linalg.norm(signature))
    values3, vectors3 = np.linalg.eigh(covariance)
    principal = vectors3[:, -1] * math.sqrt(max(values3[-1], 0.0))
    if principal[1] < 0:
        principal = -principal
    colour_cos = abs(float(vectors3[:, -1] @ PBV_SIGNATURE_RGB)) / float(np.linalg.norm(PBV_SIGNATURE_RGB))
    planar_share = total / max(float(np.trace(covariance)), 1e-300)
    return PulseSignature(direction_cos=direction_cos, colour_cos=colour_cos, anisotropy=float(values[-1] / total),
                          planar_share=planar_share, amplitudes_rgb=principal)


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
        readings.append(_reading(t_end, tracked, estimate))
        end += step
    return readings


def track_window(tracker: HeartRateTracker, estimate: WindowEstimate) -> HeartRateReading:
    """Feed one window to the tracker and return the (gated) reading."""
    return _reading(estimate.t_end_s, tracker.update(estimate), estimate)


def _reading(t_s: float, tracked: float | None, estimate: WindowEstimate) -> HeartRateReading:
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
