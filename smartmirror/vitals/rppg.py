"""Unsupervised pulse extraction from skin-ROI colour traces: GREEN, CHROM, POS and ICA.

Each method maps the mean R, G, B of the skin per sample, on an even time grid, to a pulse signal:
``fn(rgb: ndarray (n, 3), *, sampling_rate: float) -> ndarray (n,)``. They are registered by name in
:mod:`smartmirror.vitals.methods`. :func:`extract_pulse` adds what every caller needs: the blood-volume
orientation (peaks up = more blood = darker skin) and a zero mean.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from smartmirror.vitals.colour_signature import pulse_signature
from smartmirror.vitals.method_registry import PulseMethod, register_method, registered
from smartmirror.vitals.signal import bandpass, normalise_channels

#: The method used when none is named, chosen by measurement on real compressed video: on 16 UBFC-rPPG subjects
#: (H.264, 75-210 kbit/s) POS's whole-clip heart rate is within 1.2 beats/min of the contact PPG on average,
#: CHROM's, GREEN's and ICA's are off by 6-9 on some subjects (benchmarks/real_eval.py, README).
DEFAULT_METHOD = "pos"

#: Pulse band for filtering, Hz (36-240 beats/min: wider than the 40-200 search band so edges are not cut).
PULSE_BAND_HZ = (0.6, 4.0)


def _window_length(n: int, sampling_rate: float, window_s: float) -> int:
    return int(max(2, min(n, int(np.ceil(window_s * sampling_rate)))))


def _overlap_add(segments: np.ndarray, n: int) -> np.ndarray:
    """Sum segments (m, l) that start at samples 0, 1, ..., m - 1 into a signal of length n."""
    m, length = segments.shape
    out = np.zeros(n)
    for j in range(length):
        out[j:j + m] += segments[:, j]
    return out


def rppg_green(rgb: np.ndarray, *, sampling_rate: float) -> np.ndarray:
    """The green channel's relative change (Verkruysse et al. 2008).

    Parameters
    ----------
    rgb : ndarray, shape (n_samples, 3)
        Mean R, G, B of the skin ROI, one row per sample of an even grid.
    sampling_rate : float
        Rate of the grid in Hz (samples/second).

    Returns
    -------
    ndarray, shape (n_samples,)
        Zero-mean signal, relative units (brighter = positive).
    """
    return normalise_channels(rgb)[:, 1]


def rppg_pos(rgb: np.ndarray, *, sampling_rate: float, window_s: float = 1.6) -> np.ndarray:
    """Plane-Orthogonal-to-Skin pulse (Wang et al. 2017), sliding windows of ``window_s`` overlap-added.

    Per window, colours are divided by their temporal mean, projected on the plane orthogonal to skin tone
    (``S1 = G - B``, ``S2 = G + B - 2R``), combined as ``S1 + (std S1 / std S2) S2`` (alpha tuning), made
    zero-mean, and added into the output.

    Parameters
    ----------
    rgb : ndarray, shape (n_samples, 3)
        Mean R, G, B of the skin ROI on an even grid.
    sampling_rate : float
        Rate of the grid in Hz (samples/second).
    window_s : float
        Window length in seconds (1.6 s: about one cardiac cycle at 40 beats/min).

    Returns
    -------
    ndarray, shape (n_samples,)
        Pulse signal, arbitrary units.

    References
    ----------
    Wang, den Brinker, Stuijk, de Haan (2017). Algorithmic principles of remote PPG. IEEE TBME 64(7).
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    n = len(rgb)
    length = _window_length(n, sampling_rate, window_s)
    windows = sliding_window_view(rgb, length, axis=0)  # (m, 3, length)
    mean = windows.mean(axis=2, keepdims=True)
    mean[mean == 0] = 1.0
    normalised = windows / mean
    s1 = normalised[:, 1] - normalised[:, 2]
    s2 = normalised[:, 1] + normalised[:, 2] - 2.0 * normalised[:, 0]
    sd2 = s2.std(axis=1)
    alpha = np.divide(s1.std(axis=1), sd2, out=np.zeros_like(sd2), where=sd2 > 0)
    h = s1 + alpha[:, None] * s2
    h -= h.mean(axis=1, keepdims=True)
    return _overlap_add(h, n)


def rppg_chrom(rgb: np.ndarray, *, sampling_rate: float, window_s: float = 1.6) -> np.ndarray:
    """Chrominance-based pulse (de Haan & Jeanne 2013).

    Colours are divided by their moving mean (``window_s``), combined into ``X = 3R - 2G`` and
    ``Y = 1.5R + G - 1.5B``, band-passed, and per half-overlapping Hann window combined as
    ``X - (std X / std Y) Y`` and overlap-added.

    Parameters
    ----------
    rgb : ndarray, shape (n_samples, 3)
        Mean R, G, B of the skin ROI on an even grid.
    sampling_rate : float
        Rate of the grid in Hz (samples/second).

    Returns
    -------
    ndarray, shape (n_samples,)
        Pulse signal, arbitrary units.

    References
    ----------
    de Haan, Jeanne (2013). Robust pulse rate from chrominance-based rPPG. IEEE TBME 60(10).
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    n = len(rgb)
    length = _window_length(n, sampling_rate, window_s)
    kernel = np.ones(length) / length
    padded = np.pad(rgb, ((length // 2, length - 1 - length // 2), (0, 0)), mode="edge")
    moving_mean = np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(3)], axis=1)
    moving_mean[moving_mean == 0] = 1.0
    r, g, b = (rgb / moving_mean).T
    x = bandpass(3 * r - 2 * g, sampling_rate=sampling_rate, low_hz=PULSE_BAND_HZ[0], high_hz=PULSE_BAND_HZ[1])
    y = bandpass(1.5 * r + g - 1.5 * b, sampling_rate=sampling_rate, low_hz=PULSE_BAND_HZ[0],
                 high_hz=PULSE_BAND_HZ[1])
    length += length % 2
    if n < length:
        sd_y = y.std()
        return x - (x.std() / sd_y if sd_y > 0 else 0.0) * y
    step = length // 2
    starts = np.arange(0, n - length + 1, step)
    hann = np.hanning(length)
    out = np.zeros(n)
    for start in starts:
        xs, ys = x[start:start + length], y[start:start + length]
        sd_y = ys.std()
        segment = xs - (xs.std() / sd_y if sd_y > 0 else 0.0) * ys
        out[start:start + length] += hann * (segment - segment.mean())
    tail = starts[-1] + length
    if tail < n:  # the last partial window
        xs, ys = x[tail - step:], y[tail - step:]
        sd_y = ys.std()
        segment = xs - (xs.std() / sd_y if sd_y > 0 else 0.0) * ys
        out[tail - step:] += segment - segment.mean()
    return out


def fast_ica(x: np.ndarray, *, random_state: int = 0, max_iter: int = 200, tol: float = 1e-5) -> np.ndarray:
    """Unmixing matrix of symmetric FastICA (logcosh contrast) for centred data ``x`` (n_samples, k).

    Returns ``U`` (k, k): the sources are ``x @ U.T`` (unit variance, uncorrelated). Whitening by the
    eigen-decomposition of the covariance, then Hyvarinen's fixed-point iteration with symmetric
    decorrelation; a fixed seed makes it deterministic. (scikit-learn's FastICA does the same; this avoids
    importing scikit-learn on the report's path.)
    """
    x = np.asarray(x, dtype=np.float64)
    n, k = x.shape
    values, vectors = np.linalg.eigh(x.T @ x / n)
    values = np.maximum(values, 1e-12 * values.max())
    whitening = (vectors / np.sqrt(values)).T                       # (k, k): z = x @ whitening.T
    z = x @ whitening.T

    def decorrelate(w: np.ndarray) -> np.ndarray:
        s, u = np.linalg.eigh(w @ w.T)
        return (u / np.sqrt(np.maximum(s, 1e-12))) @ u.T @ w

    w = decorrelate(np.random.default_rng(random_state).standard_normal((k, k)))
    for _ in range(max_iter):
        projected = np.tanh(z @ w.T)                                 # (n, k)
        updated = decorrelate(projected.T @ z / n - np.diag((1.0 - projected**2).mean(axis=0)) @ w)
        converged = np.max(np.abs(np.abs(np.einsum("ij,ij->i", updated, w)) - 1.0)) < tol
        w = updated
        if converged:
            break
    return w @ whitening


def rppg_ica(rgb: np.ndarray, *, sampling_rate: float, random_state: int = 0) -> np.ndarray:
    """Independent component analysis of the three channels (Poh, McDuff, Picard 2010).

    Channels are normalised, band-passed and z-scored; FastICA (:func:`fast_ica`) separates three sources, and
    the pulse is the one with the most peaked spectrum in the pulse band (largest fraction of power at its
    peak), weighted by how blood-like the colour variation is at that source's rate
    (:func:`smartmirror.vitals.colour_signature.pulse_signature`; a flickering lamp is not
    taken). Its unmixing row is then
    applied to the unfiltered channels, so the waveform keeps its harmonics.

    Parameters
    ----------
    rgb : ndarray, shape (n_samples, 3)
        Mean R, G, B of the skin ROI on an even grid.
    sampling_rate : float
        Rate of the grid in Hz (samples/second).

    Returns
    -------
    ndarray, shape (n_samples,)
        Pulse signal, arbitrary units.

    References
    ----------
    Poh, McDuff, Picard (2010). Non-contact, automated cardiac pulse measurements using video imaging and blind
    source separation. Optics Express 18(10).
    """
    from scipy.signal import detrend, periodogram

    broad = detrend(normalise_channels(rgb), axis=0)
    x = bandpass(broad, sampling_rate=sampling_rate, low_hz=PULSE_BAND_HZ[0], high_hz=PULSE_BAND_HZ[1])
    sd = x.std(axis=0)
    if len(x) < 8 or np.any(sd == 0):
        return x[:, 1] if len(x) else np.zeros(0)
    x = (x - x.mean(axis=0)) / sd
    unmixing = fast_ica(x, random_state=random_state)
    sources = x @ unmixing.T
    freqs, power = periodogram(sources, fs=sampling_rate, axis=0, nfft=max(1024, len(sources)))
    band = (freqs >= 40 / 60) & (freqs <= 200 / 60)
    peakiness = power[band].max(axis=0) / np.maximum(power[band].sum(axis=0), 1e-12)
    # how blood-like the skin's colour variation is at each source's own peak rate: blood changes all three
    # channels the same way, green most; a flickering lamp or a coloured screen does not
    peak_bpm = 60.0 * freqs[band][np.argmax(power[band], axis=0)]
    likeness = np.ones(len(peak_bpm))
    for k, bpm in enumerate(peak_bpm):
        signature = pulse_signature(rgb, sampling_rate=sampling_rate, bpm=float(bpm))
        likeness[k] = max(signature.score, 0.05) if signature is not None else 0.05
    return (broad - broad.mean(axis=0)) / sd @ unmixing[int(np.argmax(peakiness * likeness))]


#: Band (Hz) in which :func:`remove_background` fits and removes the scene's colour changes (the pulse band
#: with a margin; slower changes, such as breathing's, are left alone).
BACKGROUND_BAND_HZ = (0.5, 4.0)
#: :func:`remove_background` subtracts the fit only when it explains this many times what chance would.
CHANCE_FACTOR = 2.0


def remove_background(rgb: np.ndarray, background: np.ndarray, *, sampling_rate: float) -> np.ndarray:
    """The skin colours less what the background's colour changes explain (least squares, in the pulse band).

    Each skin channel's relative change, band-passed to :data:`BACKGROUND_BAND_HZ`, is regressed on the
    band-passed relative changes of all background channels over the whole stretch, and the fit is subtracted:
    illumination rectification (Li et al. 2014, who adapt a filter on the background's green). On the browser's
    VP8 stream of a real webcam recording the skin trace carries a 41-60 beats/min colour change that a plain
    wall patch in the frame's corner carries too (the file itself has a weaker one at 52-59); POS does not
    cancel it, this does (README, "Live pulse"). The pulse is not in the background, so it stays.

    Parameters
    ----------
    rgb : ndarray, shape (n, 3)
        Mean skin R, G, B on an even grid.
    background : ndarray, shape (n, k)
        Background colours on the same grid (any number of channels; columns with NaN are not used).
    sampling_rate : float
        Grid rate in Hz.

    Returns
    -------
    ndarray, shape (n, 3)
        The cleaned skin colours (same means; unchanged without a usable background column).

    References
    ----------
    Li, Chen, Zhao, Pietikainen (2014). Remote heart rate measurement from face videos under realistic
    situations. CVPR.
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    background = np.asarray(background, dtype=np.float64).reshape(len(rgb), -1)
    usable = np.all(np.isfinite(background), axis=0) & (np.min(background, axis=0) > 0)
    if len(rgb) < 3 * sampling_rate or not usable.any():
        return rgb
    low, high = BACKGROUND_BAND_HZ
    reference = bandpass(normalise_channels(background[:, usable]), sampling_rate=sampling_rate, low_hz=low,
                         high_hz=high)
    scale = reference.std(axis=0)
    reference = reference[:, scale > 0] / scale[scale > 0]
    if reference.shape[1] == 0:
        return rgb
    mean = rgb.mean(axis=0)
    skin = bandpass(normalise_channels(rgb), sampling_rate=sampling_rate, low_hz=low, high_hz=high)
    beta, *_ = np.linalg.lstsq(reference, skin, rcond=None)
    fit = reference @ beta
    # k regressors explain about k / dof of any band-limited noise by chance (dof: 2 x bandwidth x duration);
    # a background that explains less than twice that is not the scene's light, and its fit would only add noise
    dof = 2.0 * (high - low) * len(rgb) / sampling_rate
    if float(np.sum(fit ** 2)) < CHANCE_FACTOR * reference.shape[1] / dof * float(np.sum(skin ** 2)):
        return rgb
    return rgb - fit * mean


def extract_pulse(rgb: np.ndarray, *, sampling_rate: float, method: str = DEFAULT_METHOD) -> np.ndarray:
    """Run a registered trace method and orient the result as blood volume (peaks = more blood = darker).

    The sign is set from the data: the pulse must vary against the (band-passed) green channel, since blood
    absorbs green light. Raises ``ValueError`` for an unknown method or a "frames" method (those need crops).

    Returns
    -------
    ndarray, shape (n_samples,)
        Zero-mean pulse, unit standard deviation (all zeros when the input is constant).
    """
    spec = registered(method)  # the built-in trace methods are in this module, so they are registered
    if spec.kind != "trace":
        raise ValueError(f"pulse method {spec.name!r} works on face crops, not on colour traces")
    rgb = np.asarray(rgb, dtype=np.float64)
    pulse = np.asarray(spec.fn(rgb, sampling_rate=sampling_rate), dtype=np.float64)
    return orient_and_scale(pulse, rgb, sampling_rate=sampling_rate)


def snr_optimal_pulse(
    rgb: np.ndarray, *, sampling_rate: float, heart_rate_bpm: float, band_hz: tuple[float, float] = (0.6, 5.0),
    half_width_hz: float = 0.15,
) -> np.ndarray:
    """The channel combination with the best pulse-to-noise ratio, once the heart rate is known (for HRV).

    The pulse's colour direction ``s`` is the main eigenvector of the cross-spectral matrix at the rate and its
    2nd and 3rd harmonics; the noise covariance ``N`` comes from all other bins of the band. The weights
    ``N^-1 s`` (a matched filter, as in de Haan & van Leest's PBV method but with both measured) keep the
    pulse's whole waveform and suppress whatever the noise is made of: sensor noise (then it weights the
    strong green channel) or motion (then it cancels intensity, like POS). Beat timing depends on that SNR.

    Parameters
    ----------
    rgb : ndarray, shape (n_samples, 3)
        Mean skin R, G, B on an even grid (a stretch where the colour mixing is steady).
    sampling_rate : float
        Grid rate in Hz.
    heart_rate_bpm : float
        The known rate (beats/min).

    Returns
    -------
    ndarray, shape (n_samples,)
        Blood-volume oriented pulse, unit sd.

    References
    ----------
    de Haan, van Leest (2014). Improved motion robustness of remote-PPG by using the blood volume pulse
    signature. Physiol. Meas. 35(9).
    """
    from scipy.signal import detrend

    rgb = np.asarray(rgb, dtype=np.float64)
    x = detrend(normalise_channels(rgb), axis=0)
    spectrum = np.fft.rfft(x, axis=0)
    freqs = np.fft.rfftfreq(len(x), d=1.0 / sampling_rate)
    f0 = heart_rate_bpm / 60.0
    pulse_bins = np.zeros(len(freqs), dtype=bool)
    for harmonic in (1, 2, 3):
        pulse_bins |= np.abs(freqs - harmonic * f0) <= half_width_hz
    in_band = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    signal_part, noise_part = spectrum[pulse_bins & in_band], spectrum[~pulse_bins & in_band]
    if len(signal_part) == 0 or len(noise_part) < 3:
        return orient_and_scale(x[:, 1], rgb, sampling_rate=sampling_rate)
    signal_cov = np.real(signal_part.T @ np.conj(signal_part))
    noise_cov = np.real(noise_part.T @ np.conj(noise_part)) / len(noise_part)
    direction = np.linalg.eigh(signal_cov)[1][:, -1]
    weights = np.linalg.solve(noise_cov + 1e-9 * np.trace(noise_cov) * np.eye(3), direction)
    return orient_and_scale(x @ weights, rgb, sampling_rate=sampling_rate)


def orient_and_scale(pulse: np.ndarray, rgb: np.ndarray, *, sampling_rate: float) -> np.ndarray:
    """Zero mean, unit sd, sign flipped so the pulse anti-correlates with the green channel in the pulse band."""
    pulse = np.asarray(pulse, dtype=np.float64) - np.mean(pulse)
    sd = pulse.std()
    if not np.isfinite(sd) or sd == 0:
        return np.zeros_like(pulse)
    pulse = pulse / sd
    if len(pulse) > 16:
        green = bandpass(normalise_channels(rgb)[:, 1], sampling_rate=sampling_rate, low_hz=PULSE_BAND_HZ[0],
                         high_hz=PULSE_BAND_HZ[1])
        filtered = bandpass(pulse, sampling_rate=sampling_rate, low_hz=PULSE_BAND_HZ[0], high_hz=PULSE_BAND_HZ[1])
        if float(np.dot(filtered, green)) > 0:
            pulse = -pulse
    return pulse


for _name, _fn, _text in (
    ("green", rppg_green, "Green channel (Verkruysse 2008)"),
    ("chrom", rppg_chrom, "Chrominance (de Haan & Jeanne 2013)"),
    ("pos", rppg_pos, "Plane orthogonal to skin (Wang 2017)"),
    ("ica", rppg_ica, "FastICA of R, G, B (Poh 2010)"),
):
    register_method(PulseMethod(name=_name, kind="trace", fn=_fn, realtime=True, description=_text))
