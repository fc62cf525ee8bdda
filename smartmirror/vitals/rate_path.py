"""The clip's heart rate with hindsight: the most likely rate course through all the windows' spectra (Viterbi).

:func:`rate_path` searches the course, :func:`path_confidence` rates it by its SNR, by the colour of the variation
along the whole path and by how far the pulse stands above the camera's own noise floor
(:mod:`smartmirror.vitals.noise_floor`), and :func:`clip_heart_rate_from_paths` takes the course's mean. The
window-by-window tracker (:class:`smartmirror.vitals.heart.HeartRateTracker`) is the live counterpart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from smartmirror.vitals.colour_signature import (
    PulseSignature,
    covariance_spectrum,
    pulse_covariance,
    signature_of_covariance,
    signature_scores,
)
from smartmirror.vitals.heart import CONFIDENCE_GATE, MIN_WINDOW_S, STEP_S, WINDOW_S, ClipHeartRate, HeartRateReading
from smartmirror.vitals.noise_floor import floor_margin_score, path_floor_margins
from smartmirror.vitals.signal import bandpass
from smartmirror.vitals.spectrum import HALF_PEAK_RATIO, HR_BAND_BPM, pulse_snr_db, pulse_spectrum

#: Rate grid of the whole-clip path search, beats/min.
PATH_GRID_BPM = np.arange(HR_BAND_BPM[0], HR_BAND_BPM[1] + 0.25, 0.5)
#: How far the heart rate may move between windows one second apart in the path search (Gaussian sd, beats/min):
#: real rates change by up to 1-2 beats/min per second (UBFC-rPPG's subjects climb from 90 to 130 in a minute).
PATH_SD_BPM_PER_S = 3.0
#: A path whose colour (:func:`path_colour_score` of its whole-path signature) is below this is searched again
#: with each window's spectrum weighted by how blood-like the colour variation is at each rate
#: (:func:`colour_weights`), and replaced when the new path's colour is clearly blood's: at least
#: :data:`RECOLOURED_MIN` (on UBFC-rPPG the recovered courses score 1.0; a course of 0.76 that CHROM found on
#: subject 9 was 29 beats/min off).
RECOLOUR_BELOW = 0.5
RECOLOURED_MIN = 0.8
#: The weight of a rate whose colour variation is not blood-like at all in that search (a floor, so that a path
#: can cross a window where the colour is unclear).
COLOUR_WEIGHT_FLOOR = 0.02


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
    floor_margin_db: np.ndarray | None = None  # per window: :func:`noise_floor.noise_floor_margin_db` at the rate

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
    growing to ``window_s`` and then sliding (as :func:`heart.heart_rate_series`); none when the pulse is shorter."""
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
    :func:`spectrum.resolve_harmonics` but held over the whole clip, so a noise peak that happens to sit at half
    the rate in a few windows does not pass."""
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


def _viterbi(log_evidence: np.ndarray, log_step: np.ndarray) -> np.ndarray:
    """The grid index (per window) of the best-scoring course: ``log_evidence`` (windows, grid) summed along it
    plus ``log_step`` [to, from] between consecutive windows."""
    score = log_evidence[0].copy()
    back = np.zeros(log_evidence.shape, dtype=np.int64)
    rows = np.arange(log_evidence.shape[1])
    for k in range(1, len(log_evidence)):
        candidates = score[None, :] + log_step          # [to, from]
        back[k] = np.argmax(candidates, axis=1)
        score = candidates[rows, back[k]] + log_evidence[k]
    index = np.empty(len(log_evidence), dtype=np.int64)
    index[-1] = int(np.argmax(score))
    for k in range(len(log_evidence) - 1, 0, -1):
        index[k - 1] = back[k, index[k]]
    return index


def _colour(covariance: np.ndarray | None) -> float:
    """:func:`path_colour_score` of a whole-path covariance, its SNR part left out (0 without one)."""
    return 0.0 if covariance is None else path_colour_score(signature_of_covariance(covariance), 0.0)


def colour_weights(rgb: np.ndarray, times: np.ndarray, *, sampling_rate: float, t0_s: float) -> np.ndarray:
    """(windows, :data:`PATH_GRID_BPM`) 0..1: how blood-like each window's colour variation is at each rate
    (:attr:`~smartmirror.vitals.colour_signature.PulseSignature.score` of the colour covariance there)."""
    window = min(int(round(WINDOW_S * sampling_rate)), len(rgb))
    rows = []
    for t_end in times:
        end = int(round((t_end - t0_s) * sampling_rate)) + 1
        covariances = covariance_spectrum(rgb[max(end - window, 0):end], sampling_rate=sampling_rate,
                                          bpm=PATH_GRID_BPM)
        rows.append(np.zeros(len(PATH_GRID_BPM)) if covariances is None else signature_scores(covariances))
    return np.asarray(rows)


def rate_path(pulse: np.ndarray, rgb: np.ndarray | None = None, *, sampling_rate: float, t0_s: float = 0.0,
              sd_bpm_per_s: float = PATH_SD_BPM_PER_S) -> RatePath | None:
    """The heart-rate course that best explains a whole pulse segment (offline; the clip report's rate).

    Viterbi search on the grid :data:`PATH_GRID_BPM` through the sliding windows' normalised spectra (log power
    as the evidence, a Gaussian step of ``sd_bpm_per_s`` per second as the prior): one noisy window, a motion burst
    or a strong harmonic in a few windows cannot pull the path away, because the path must stay continuous and
    collects the evidence of every window. The window-by-window tracker (:class:`heart.HeartRateTracker`) is the live
    counterpart, which cannot look ahead. With the colours, a course that is not blood-coloured (under
    :data:`RECOLOUR_BELOW`: a stronger motion, lighting or compression rhythm) is searched again with each
    window's colour at each rate as evidence too (:func:`colour_weights`), and the new course replaces it when
    its colour is clearly blood's (:data:`RECOLOURED_MIN`). On 16 real UBFC-rPPG subjects (H.264, 75-210
    kbit/s) the path's mean is within 1.2 beats/min of the contact PPG on average (benchmarks/real_eval.py).
    None when the segment is shorter than :data:`MIN_WINDOW_S`. With the segment's colours ``rgb`` (n, 3) the path
    also carries the colour covariance at its rate (:attr:`RatePath.covariance`), which :func:`path_confidence`
    reads.
    """
    times, spectra, raw = window_spectra(pulse, sampling_rate=sampling_rate, t0_s=t0_s)
    if len(times) == 0:
        return None
    dt = float(np.median(np.diff(times))) if len(times) > 1 else STEP_S
    step = PATH_GRID_BPM[:, None] - PATH_GRID_BPM[None, :]
    log_step = -0.5 * (step / (sd_bpm_per_s * max(dt, 1e-3))) ** 2
    log_power = np.log(spectra + 1e-12)
    index = _viterbi(log_power, log_step)
    bpm = PATH_GRID_BPM[index]
    covariance = None if rgb is None else path_covariance(rgb, times, bpm, sampling_rate=sampling_rate, t0_s=t0_s)
    if rgb is not None and _colour(covariance) < RECOLOUR_BELOW:
        # the strongest course is not blood-coloured (motion, lighting, compression at its rate): search again
        # with the colour at each rate as evidence too, and keep that course when it is clearly blood-coloured
        weights = colour_weights(rgb, times, sampling_rate=sampling_rate, t0_s=t0_s)
        other = _viterbi(log_power + np.log(weights + COLOUR_WEIGHT_FLOOR), log_step)
        other_covariance = path_covariance(rgb, times, PATH_GRID_BPM[other], sampling_rate=sampling_rate, t0_s=t0_s)
        if _colour(other_covariance) >= RECOLOURED_MIN:
            index, bpm, covariance = other, PATH_GRID_BPM[other], other_covariance
    if _half_path_is_real(spectra, index):
        half = np.round((bpm / 2.0 - PATH_GRID_BPM[0]) / (PATH_GRID_BPM[1] - PATH_GRID_BPM[0])).astype(np.int64)
        half_covariance = None if rgb is None else path_covariance(rgb, times, PATH_GRID_BPM[half],
                                                                    sampling_rate=sampling_rate, t0_s=t0_s)
        # the colour arbitrates: blood changes colour the same way at its rate; low-frequency compression and
        # lighting noise that happens to sit at half the rate does not (on real UBFC clips it is grey)
        if rgb is None or _colour(half_covariance) >= _colour(covariance) - 0.1:
            index, bpm, covariance = half, PATH_GRID_BPM[half], half_covariance
    snr = np.array([pulse_snr_db(freqs, power, rate) for (freqs, power), rate in zip(raw, bpm, strict=True)])
    full = times - t0_s >= WINDOW_S - 1.5 / sampling_rate
    margin = None if rgb is None else path_floor_margins(rgb, times, bpm, sampling_rate=sampling_rate, t0_s=t0_s)
    return RatePath(times, bpm, snr, covariance, full, margin)


def path_covariance(rgb: np.ndarray, times: np.ndarray, bpm: np.ndarray, *, sampling_rate: float,
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
