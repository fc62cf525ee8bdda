"""Synthetic skin-colour traces with ground truth, for fast tests and benchmarks of the signal chain.

The trace is what the ROI step would measure on a :mod:`smartmirror.synth` clip with the same config and seed:
the same beat times, frame times and waveform (the generator's random draws are made in the same order), the
same per-channel pulse weights, breathing baseline and illumination drift. On top of that it can add what the
video generator's clean ROI hides: measurement noise, motion-induced intensity changes and specular glints.
"""

from __future__ import annotations

import numpy as np

from smartmirror.synth import BVP_WEIGHTS_BGR, SynthConfig, SynthTruth, clip_signals, ground_truth
from smartmirror.vitals.pipeline import VitalsTrace

#: A typical mean skin colour (R, G, B) of the astronaut's forehead and cheeks.
SKIN_RGB = (196.0, 144.0, 122.0)


def simulate_rgb_trace(
    config: SynthConfig,
    *,
    skin_rgb: tuple[float, float, float] = SKIN_RGB,
    roi_noise: float = 0.0,
    motion_intensity: float = 0.0,
    motion_hz: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, SynthTruth]:
    """Mean skin R, G, B per frame of a synthetic clip, without rendering it.

    Parameters
    ----------
    config : SynthConfig
        The clip (heart rate, HRV, respiration, pulse amplitude, harmonics, drops, jitter, still, seed).
    skin_rgb : tuple
        Mean skin colour, 0..255.
    roi_noise : float
        Relative white noise of each channel per frame (standard deviation, e.g. 0.001 = 0.1 %).
    motion_intensity : float
        Relative intensity change from head motion (standard deviation; equal in all channels, like shading).
    motion_hz : float
        Bandwidth of that motion in Hz.

    Returns
    -------
    times_s : ndarray, shape (n,)
    rgb : ndarray, shape (n, 3)
    truth : SynthTruth
    """
    _, beats, times, ppg = clip_signals(config)
    breath = np.sin(2 * np.pi * config.respiration_rate_bpm / 60.0 * times)
    weights_rgb = np.asarray(BVP_WEIGHTS_BGR[::-1]) / BVP_WEIGHTS_BGR[1]
    pulse = 0.5 * config.pulse_amplitude * ppg[:, None] * weights_rgb[None, :]
    light = 1.0 + config.illumination_drift * (times / config.duration_s)
    gain = (1.0 + pulse + config.breath_amplitude * breath[:, None]) * light[:, None]
    noise_rng = np.random.default_rng(config.seed + 7)
    if motion_intensity > 0:
        from scipy.signal import butter, sosfiltfilt

        white = noise_rng.standard_normal(len(times))
        sos = butter(2, min(motion_hz / (config.fps / 2), 0.95), output="sos")
        shade = sosfiltfilt(sos, white)
        shade *= motion_intensity / max(shade.std(), 1e-12)
        gain = gain * (1.0 + shade[:, None])
    rgb = np.asarray(skin_rgb)[None, :] * gain
    if roi_noise > 0:
        rgb = rgb * (1.0 + roi_noise * noise_rng.standard_normal(rgb.shape))
    truth = ground_truth(config, beats, times, ppg)
    return times, rgb, truth


def simulate_trace(
    config: SynthConfig, *, inter_ocular_px: float = 54.0, presence: float = 0.95, **kwargs
) -> tuple[VitalsTrace, SynthTruth]:
    """:func:`simulate_rgb_trace` as a full :class:`VitalsTrace` (face presence, skin share, vertical motion).

    The face's vertical position follows the breathing motion (``config.breath_motion_px``) in inter-ocular
    distances, plus measurement jitter of 0.05 pixel.
    """
    times, rgb, truth = simulate_rgb_trace(config, **kwargs)
    breath = np.sin(2 * np.pi * config.respiration_rate_bpm / 60.0 * times)
    jitter = np.random.default_rng(config.seed + 11).normal(0.0, 0.05, len(times))
    face_y = (240.0 + config.breath_motion_px * breath + jitter) / inter_ocular_px
    n = len(times)
    trace = VitalsTrace(times_s=times, rgb=rgb, presence=np.full(n, presence), skin_fraction=np.full(n, 0.95),
                        face_y=face_y)
    return trace, truth
