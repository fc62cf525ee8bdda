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

That is the live, window-by-window reading. The clip's rate (report, ``eval``, the live summary) is found with
hindsight: :func:`rate_path` searches the most likely rate course through all the windows' spectra (Viterbi),
:func:`path_confidence` rates it by its SNR, by the colour of the variation along the whole path and by how far the
pulse stands above the camera's own noise floor (:func:`noise_floor_margin_db`), and
:func:`clip_heart_rate_from_paths` takes the course's mean.

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


def pulse_covariance(
    rgb: np.ndarray, *, sampling_rate: float, bpm: float, half_width_hz: float = 0.1
) -> np.ndarray | None:
    """In-phase cross-spectral matrix (3, 3) of the normalised (AC/DC), detrended, Hann-windowed channels within
    ``half_width_hz`` of the rate: the channels' covariance at the pulse frequency only. None for too short or
    non-finite input."""
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
    return np.real(selected.T @ np.conj(selected))


def signature_of_covariance(covariance: np.ndarray) -> PulseSignature | None:
    """The :class:`PulseSignature` of a pulse-frequency covariance (:func:`pulse_covariance`, or a sum of them)."""
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
    covariance = pulse_covariance(rgb, sampling_rate=sampling_rate, bpm=bpm, half_width_hz=half_width_hz)
    return None if covariance is None else signature_of_covariance(covariance)


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


#: Rate grid of the whole-clip path search, beats/min.
PATH_GRID_BPM = np.arange(HR_BAND_BPM[0], HR_BAND_BPM[1] + 0.25, 0.5)
#: How far the heart rate may move between windows one second apart in the path search (Gaussian sd, beats/min):
#: real rates change by up to 1-2 beats/min per second (UBFC-rPPG's subjects climb from 90 to 130 in a minute).
PATH_SD_BPM_PER_S = 3.0


@dataclass(frozen=True)
class RatePath:
    """The most likely heart-rate course through a clip's window spectra (:func:`rate_path`).

    Attributes
    ----------
    t_s : ndarray, shape (m,)
        Window end times, seconds.
    bpm : ndarray, shape (m,)
        The rate at each window, beats/min.
    snr_db : ndarray, shape (m,)
        Each window's pulse SNR at the path's rate (:func:`pulse_snr_db`).
    covariance : ndarray, shape (3, 3), optional
        The windows' colour covariances at the path's rate (:func:`pulse_covariance`, each scaled to unit trace),
        summed: the colour of the variation the path follows, measured over the whole clip.
    """

    t_s: np.ndarray
    bpm: np.ndarray
    snr_db: np.ndarray
    covariance: np.ndarray | None = None
    full: np.ndarray | None = None        # bool per window: the window spans the full WINDOW_S
    floor_margin_db: np.ndarray | None = None   # per window: :func:`noise_floor_margin_db` at the path's rate

    @property
    def signature(self) -> PulseSignature | None:
        return None if self.covariance is None else signature_of_covariance(self.covariance)

    @property
    def mean_bpm(self) -> float:
        return float(np.mean(self.bpm))


def window_spectra(pulse: np.ndarray, *, sampling_rate: float, t0_s: float = 0.0, window_s: float = WINDOW_S,
                   step_s: float = STEP_S) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """The sliding windows' band-passed Welch spectra: (end times s, spectra on :data:`PATH_GRID_BPM` each
    summing to 1, the raw (freqs_hz, power) pairs). Windows end every ``step_s`` from :data:`MIN_WINDOW_S` on,
    growing to ``window_s`` and then sliding (as :func:`heart_rate_series`); none when the pulse is shorter."""
    n = len(pulse)
    window = int(round(window_s * sampling_rate))
    first = int(round(MIN_WINDOW_S * sampling_rate))
    if n < first:
        return np.zeros(0), np.zeros((0, len(PATH_GRID_BPM))), []
    step = max(1, int(round(step_s * sampling_rate)))
    ends = np.arange(first, n + 1, step)
    times, rows, raw = [], [], []
    for end in ends:
        filtered = bandpass(pulse[max(end - window, 0):end], sampling_rate=sampling_rate, low_hz=0.6, high_hz=4.0)
        freqs, power = pulse_spectrum(filtered, sampling_rate=sampling_rate)
        on_grid = np.interp(PATH_GRID_BPM / 60.0, freqs, power)
        total = float(on_grid.sum())
        rows.append(on_grid / total if total > 0 else np.full(len(PATH_GRID_BPM), 1.0 / len(PATH_GRID_BPM)))
        times.append(t0_s + (end - 1) / sampling_rate)
        raw.append((freqs, power))
    return np.asarray(times), np.asarray(rows), raw


def _half_path_is_real(spectra: np.ndarray, index: np.ndarray, *, neighbourhood_bpm: float = 3.0) -> bool:
    """Whether the path ran along the second harmonic of a heavy dicrotic pulse: through the windows, the spectrum
    at half the path's rate holds a real peak (the median over windows of its power is at least
    :data:`HALF_PEAK_RATIO` of the path's and 4x the window's median power), the same test as
    :func:`resolve_harmonics` but held over the whole clip, so a noise peak that happens to sit at half the rate
    in a few windows does not pass."""
    half_bpm = PATH_GRID_BPM[index] / 2.0
    if np.any(half_bpm < PATH_GRID_BPM[0]):
        return False
    step = float(PATH_GRID_BPM[1] - PATH_GRID_BPM[0])
    reach = max(1, int(round(neighbourhood_bpm / step)))
    centre = np.clip(np.round((half_bpm - PATH_GRID_BPM[0]) / step).astype(int), 0, len(PATH_GRID_BPM) - 1)
    rows = np.arange(len(spectra))
    near = np.stack([spectra[rows, np.clip(centre + d, 0, len(PATH_GRID_BPM) - 1)] for d in range(-reach, reach + 1)])
    half_power = near.max(axis=0)
    path_power = spectra[rows, index]
    floor = np.median(spectra, axis=1)
    return bool(np.median(half_power / np.maximum(path_power, 1e-300)) >= HALF_PEAK_RATIO
                and np.median(half_power / np.maximum(floor, 1e-300)) >= 4.0)


def rate_path(pulse: np.ndarray, rgb: np.ndarray | None = None, *, sampling_rate: float, t0_s: float = 0.0,
              sd_bpm_per_s: float = PATH_SD_BPM_PER_S) -> RatePath | None:
    """The heart-rate course that best explains a whole pulse segment (offline; the clip report's rate).

    Viterbi search on the grid :data:`PATH_GRID_BPM` through the sliding windows' normalised spectra (log power
    as the evidence, a Gaussian step of ``sd_bpm_per_s`` per second as the prior): one noisy window, a motion burst
    or a strong harmonic in a few windows cannot pull the path away, because the path must stay continuous and
    collects the evidence of every window. The window-by-window tracker (:class:`HeartRateTracker`) is the live
    counterpart, which cannot look ahead. On 16 real UBFC-rPPG subjects (H.264, 75-210 kbit/s) the path's mean
    is within 1.2 beats/min of the contact PPG on average (benchmarks/real_eval.py). None when the segment is
    shorter than :data:`MIN_WINDOW_S`. With the segment's colours ``rgb`` (n, 3) the path also carries the colour
    covariance at its rate (:attr:`RatePath.covariance`), which :func:`path_confidence` reads.
    """
    times, spectra, raw = window_spectra(pulse, sampling_rate=sampling_rate, t0_s=t0_s)
    if len(times) == 0:
        return None
    log_evidence = np.log(spectra + 1e-12)
    dt = float(np.median(np.diff(times))) if len(times) > 1 else STEP_S
    step = PATH_GRID_BPM[:, None] - PATH_GRID_BPM[None, :]
    log_step = -0.5 * (step / (sd_bpm_per_s * max(dt, 1e-3))) ** 2
    score = log_evidence[0].copy()
    back = np.zeros((len(times), len(PATH_GRID_BPM)), dtype=np.int64)
    rows = np.arange(len(PATH_GRID_BPM))
    for k in range(1, len(times)):
        candidates = score[None, :] + log_step          # [to, from]
        back[k] = np.argmax(candidates, axis=1)
        score = candidates[rows, back[k]] + log_evidence[k]
    index = np.empty(len(times), dtype=np.int64)
    index[-1] = int(np.argmax(score))
    for k in range(len(times) - 1, 0, -1):
        index[k - 1] = back[k, index[k]]
    bpm = PATH_GRID_BPM[index]
    covariance = None if rgb is None else _path_covariance(rgb, times, bpm, sampling_rate=sampling_rate, t0_s=t0_s)
    if _half_path_is_real(spectra, index):
        half = np.round((bpm / 2.0 - PATH_GRID_BPM[0]) / (PATH_GRID_BPM[1] - PATH_GRID_BPM[0])).astype(np.int64)
        half_covariance = None if rgb is None else _path_covariance(rgb, times, PATH_GRID_BPM[half],
                                                                    sampling_rate=sampling_rate, t0_s=t0_s)
        # the colour arbitrates: blood changes colour the same way at its rate; low-frequency compression and
        # lighting noise that happens to sit at half the rate does not (on real UBFC clips it is grey)
        if rgb is None or (path_colour_score(signature_of_covariance(half_covariance), 0.0)
                           >= path_colour_score(signature_of_covariance(covariance), 0.0) - 0.1):
            index, bpm, covariance = half, PATH_GRID_BPM[half], half_covariance
    snr = np.array([pulse_snr_db(freqs, power, rate) for (freqs, power), rate in zip(raw, bpm, strict=True)])
    full = times - t0_s >= WINDOW_S - 1.5 / sampling_rate
    margin = None if rgb is None else _path_floor_margins(rgb, times, bpm, sampling_rate=sampling_rate, t0_s=t0_s)
    return RatePath(times, bpm, snr, covariance, full, margin)


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


def _path_floor_margins(rgb: np.ndarray, times: np.ndarray, bpm: np.ndarray, *, sampling_rate: float,
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


def _path_covariance(rgb: np.ndarray, times: np.ndarray, bpm: np.ndarray, *, sampling_rate: float,
                     t0_s: float) -> np.ndarray:
    """Sum over the path's windows of the colour covariance at the path's rate, each scaled to unit trace."""
    window = min(int(round(WINDOW_S * sampling_rate)), len(rgb))
    covariance = np.zeros((3, 3))
    for t_end, rate in zip(times, bpm, strict=True):
        end = int(round((t_end - t0_s) * sampling_rate)) + 1
        part = pulse_covariance(rgb[max(end - window, 0):end], sampling_rate=sampling_rate, bpm=float(rate))
        if part is not None and np.trace(part) > 0:
            covariance += part / np.trace(part)
    return covariance


#: Path confidence: median window SNR (dB) at which its SNR part is 0.5, and the logistic scale (dB). Calibrated
#: on real compressed video: UBFC-rPPG's 16 subjects have median path SNRs of -6.9 to +2.8 dB, all with the
#: right rate; flat noise gives about -6.7 dB, so the SNR part only rejects a path through nothing at all.
PATH_SNR_MIDPOINT_DB = -9.0
PATH_SNR_SCALE_DB = 1.0


#: Off-intensity pulse power (planar share x SNR as a power ratio) at which :func:`path_colour_score`'s planar part
#: starts to rise from 0, and where it reaches 1 (log scale between).
PATH_PLANAR_POWER = (0.004, 0.02)


def path_colour_score(signature: PulseSignature | None, snr_db: float) -> float:
    """0..1: how blood-like the whole path's colour variation is (accumulated over every window, so far steadier
    than one window's :attr:`PulseSignature.score`).

    On the 16 real UBFC subjects the colour cosine is >= 0.97, the in-plane direction cosine >= 0.95 and >= 10 %
    of the variance lies off the intensity axis; background patches of the same videos (compression noise,
    lighting) stay below 0.5 in colour, and sensor noise has no dominant direction (anisotropy near 0.5). A
    still photo that moves varies along intensity, which lies close to the blood signature, so the colour alone
    would pass it: the planar part asks for enough pulse power *off* the intensity axis (planar share times the
    SNR as a power ratio): >= 0.024 on every real subject and on moving synthetic faces, <= 0.0045 on moving
    still photos (:data:`PATH_PLANAR_POWER`).
    """
    if signature is None:
        return 0.0
    colour = np.clip((signature.colour_cos - 0.6) / 0.3, 0.0, 1.0)
    direction = np.clip((signature.direction_cos - 0.6) / 0.3, 0.0, 1.0)
    clean = np.clip((signature.anisotropy - 0.6) / 0.15, 0.0, 1.0)
    power = max(signature.planar_share * 10.0 ** (snr_db / 10.0), 1e-12)
    low, high = PATH_PLANAR_POWER
    planar = np.clip(math.log(power / low) / math.log(high / low), 0.0, 1.0)
    return float(colour * direction * clean * planar)


def path_confidence(path: RatePath, snr_db: float | None = None) -> float:
    """0..1 confidence in a path's rate: the SNR part (window SNR ``snr_db``, default the path's median) times
    :func:`path_colour_score` (0.5 without colours) times :func:`floor_margin_score` (the pulse must stand above
    the camera's own noise floor)."""
    snr = float(np.median(path.snr_db)) if snr_db is None else snr_db
    from_snr = 1.0 / (1.0 + math.exp(-(snr - PATH_SNR_MIDPOINT_DB) / PATH_SNR_SCALE_DB))
    colour = path_colour_score(path.signature, snr) if path.covariance is not None else 0.5
    return float(np.clip(from_snr * colour * floor_margin_score(path.floor_margin_db), 0.0, 1.0))


def path_readings(path: RatePath) -> list[HeartRateReading]:
    """One reading per window along the path (the clip report's per-window rates, smoothed with hindsight)."""
    median_snr = float(np.median(path.snr_db))
    colour = path_colour_score(path.signature, median_snr) if path.covariance is not None else 0.5
    colour *= floor_margin_score(path.floor_margin_db)
    readings = []
    for t_s, bpm, snr in zip(path.t_s, path.bpm, path.snr_db, strict=True):
        from_snr = 1.0 / (1.0 + math.exp(-(snr - PATH_SNR_MIDPOINT_DB) / PATH_SNR_SCALE_DB))
        confidence = float(np.clip(from_snr * colour, 0.0, 1.0))
        readings.append(HeartRateReading(
            t_s=float(t_s), heart_rate_bpm=round(float(bpm), 1) if confidence >= CONFIDENCE_GATE else None,
            tracked_bpm=float(bpm), confidence=round(confidence, 3), snr_db=round(float(snr), 2),
            window_bpm=float(bpm), signature_score=round(colour, 3)))
    return readings


def clip_heart_rate_from_paths(paths: list[RatePath]) -> ClipHeartRate:
    """The clip's rate: the mean of every full window's path rate over all segments; its confidence
    (:func:`path_confidence` of the pooled windows) gates it at :data:`CONFIDENCE_GATE`."""
    paths = [p for p in paths if len(p.bpm)]
    if not paths:
        return ClipHeartRate(None, None, 0.0, None)
    if any(p.full is not None and p.full.any() for p in paths):  # the growing first windows resolve less
        paths = [RatePath(p.t_s[p.full], p.bpm[p.full], p.snr_db[p.full], p.covariance, None,
                          None if p.floor_margin_db is None else p.floor_margin_db[p.full]) for p in paths
                 if p.full is not None and p.full.any()]
    rates = np.concatenate([p.bpm for p in paths])
    snrs = np.concatenate([p.snr_db for p in paths])
    covariances = [p.covariance for p in paths if p.covariance is not None]
    margins = [p.floor_margin_db for p in paths if p.floor_margin_db is not None]
    pooled = RatePath(np.concatenate([p.t_s for p in paths]), rates, snrs,
                      np.sum(covariances, axis=0) if covariances else None, None,
                      np.concatenate(margins) if margins else None)
    tracked = float(np.mean(rates))
    confidence = path_confidence(pooled)
    snr = float(np.median(snrs))
    gated = round(tracked, 1) if confidence >= CONFIDENCE_GATE else None
    return ClipHeartRate(gated, tracked, round(confidence, 3), round(snr, 2))


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
    covariance = None if rgb is None else _path_covariance(rgb, times, rates, sampling_rate=sampling_rate, t0_s=t0_s)
    margins = None if rgb is None else _path_floor_margins(rgb, times, rates, sampling_rate=sampling_rate, t0_s=t0_s)
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
    return _reading(estimate.t_end_s, estimate.bpm, estimate)
