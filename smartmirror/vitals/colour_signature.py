"""The colour signature of a pulse: how the skin's colour varies at the pulse rate, and how blood-like that is.

A real pulse varies along the blood-volume direction of the colour plane orthogonal to intensity; noise has no
dominant direction and motion or lighting move all channels alike. :func:`pulse_signature` measures one window,
:func:`signature_of_covariance` any sum of :func:`pulse_covariance` matrices (a whole path's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from smartmirror.vitals.signal import normalise_channels

#: Normalised blood-volume-pulse signature (R, G, B) of skin for a standard camera (de Haan & van Leest 2014).
PBV_SIGNATURE_RGB = np.array([0.33, 0.77, 0.53])

_PLANE = np.array([[1.0, -1.0, 0.0], [1.0, 1.0, -2.0]]) / np.array([[math.sqrt(2)], [math.sqrt(6)]])


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
        return float(blood_likeness(self.direction_cos, self.colour_cos, self.anisotropy))


def blood_likeness(direction_cos, colour_cos, anisotropy):
    """0..1 (scalars or arrays alike) from a signature's direction cosine, colour cosine and anisotropy: the
    :attr:`PulseSignature.score`."""
    direction = np.clip((direction_cos - 0.6) / 0.3, 0.0, 1.0)
    colour = np.clip((colour_cos - 0.75) / 0.15, 0.0, 1.0)
    clean = np.clip((anisotropy - 0.55) / 0.25, 0.0, 1.0)
    return direction * colour * clean


def _channel_spectrum(rgb: np.ndarray, sampling_rate: float) -> tuple[np.ndarray, np.ndarray] | None:
    """(freqs Hz, rfft (f, 3)) of the normalised (AC/DC), detrended, Hann-windowed channels, at 0.5 beats/min
    resolution or finer; None for too short or non-finite input."""
    rgb = np.asarray(rgb, dtype=np.float64)
    if len(rgb) < 16 or not np.all(np.isfinite(rgb)):
        return None
    from scipy.signal import detrend

    channels = detrend(normalise_channels(rgb), axis=0) * np.hanning(len(rgb))[:, None]
    nfft = 1 << int(np.ceil(np.log2(max(len(rgb), sampling_rate * 60.0 / 0.5))))
    return np.fft.rfftfreq(nfft, d=1.0 / sampling_rate), np.fft.rfft(channels, n=nfft, axis=0)


def pulse_covariance(
    rgb: np.ndarray, *, sampling_rate: float, bpm: float, half_width_hz: float = 0.1
) -> np.ndarray | None:
    """In-phase cross-spectral matrix (3, 3) of the normalised (AC/DC), detrended, Hann-windowed channels within
    ``half_width_hz`` of the rate: the channels' covariance at the pulse frequency only. None for too short or
    non-finite input."""
    transformed = _channel_spectrum(rgb, sampling_rate)
    if transformed is None:
        return None
    freqs, spectrum = transformed
    near = np.abs(freqs - bpm / 60.0) <= half_width_hz
    if not near.any():
        return None
    selected = spectrum[near]
    return np.real(selected.T @ np.conj(selected))


def covariance_spectrum(rgb: np.ndarray, *, sampling_rate: float, bpm: np.ndarray, half_width_hz: float = 0.1
                        ) -> np.ndarray | None:
    """:func:`pulse_covariance` at every rate of ``bpm`` (beats/min) from one Fourier transform: shape
    (len(bpm), 3, 3). None for too short or non-finite input."""
    transformed = _channel_spectrum(rgb, sampling_rate)
    if transformed is None:
        return None
    freqs, spectrum = transformed
    products = np.real(spectrum[:, :, None] * np.conj(spectrum[:, None, :]))
    running = np.concatenate([np.zeros((1, 3, 3)), np.cumsum(products, axis=0)])
    rates_hz = np.asarray(bpm, dtype=np.float64) / 60.0
    low = np.searchsorted(freqs, rates_hz - half_width_hz, side="left")
    high = np.searchsorted(freqs, rates_hz + half_width_hz, side="right")
    return running[high] - running[low]


def signature_scores(covariances: np.ndarray) -> np.ndarray:
    """:attr:`PulseSignature.score` of each of (k, 3, 3) covariances (0 where one is empty), vectorised."""
    covariances = np.asarray(covariances, dtype=np.float64)
    in_plane = _PLANE @ covariances @ _PLANE.T
    values, vectors = np.linalg.eigh(in_plane)
    total = values.sum(axis=1)
    signature = _PLANE @ PBV_SIGNATURE_RGB
    direction_cos = np.abs(vectors[:, :, -1] @ signature) / float(np.linalg.norm(signature))
    _, vectors3 = np.linalg.eigh(covariances)
    colour_cos = np.abs(vectors3[:, :, -1] @ PBV_SIGNATURE_RGB) / float(np.linalg.norm(PBV_SIGNATURE_RGB))
    anisotropy = values[:, -1] / np.where(total > 0, total, 1.0)
    return np.where(total > 0, blood_likeness(direction_cos, colour_cos, anisotropy), 0.0)


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
