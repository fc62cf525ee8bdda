"""The synthetic pulse generator: ground-truth files, the pulse really in the skin, knobs that do what they say."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.signal import periodogram

from smartmirror.face import FaceTracker
from smartmirror.frames import read_video_packets
from smartmirror.synth import SynthConfig, beat_times, generate_frames, ppg_waveform


def _dominant_bpm(signal: np.ndarray, fps: float) -> tuple[float, float]:
    """Frequency (per minute) of the strongest 40-200/min component, and the band's power share within 6/min."""
    freqs, power = periodogram(signal - signal.mean(), fs=fps, nfft=8192)
    band = (freqs >= 40 / 60) & (freqs <= 200 / 60)
    peak_bpm = float(freqs[band][np.argmax(power[band])] * 60)
    near = band & (np.abs(freqs * 60 - peak_bpm) <= 6)
    return peak_bpm, float(power[near].sum() / power[band].sum())


def _power_near(signal: np.ndarray, fps: float, bpm: float) -> float:
    """Absolute power of the signal within 6/min of ``bpm``."""
    freqs, power = periodogram(signal - signal.mean(), fs=fps, nfft=8192)
    return float(power[np.abs(freqs * 60 - bpm) <= 6].sum())


def _region_green(packets, face, name) -> np.ndarray:
    mask = face.region_mask(name)
    return np.array([p.image[..., 1][mask].mean() for p in packets])


def test_ground_truth_files_follow_the_ubfc_layout(synth_clip):
    clip_dir, truth = synth_clip(duration_s=6.0, width=320, height=240, heart_rate_bpm=84.0)
    lines = (clip_dir / "ground_truth.txt").read_text().splitlines()
    assert len(lines) == 3
    ppg, hr, times = (np.array(line.split(), dtype=float) for line in lines)
    assert len(ppg) == len(hr) == len(times) == 180
    assert times == pytest.approx(np.arange(180) / 30, abs=1e-5)
    assert truth.heart_rate_bpm == pytest.approx(84.0, abs=4.0)
    assert np.median(hr) == pytest.approx(84.0, abs=5.0)
    saved = json.loads((clip_dir / "truth.json").read_text())
    assert saved["respiration_rate_bpm"] == 15.0
    beats = np.array(saved["beat_times_s"])
    assert np.all(np.diff(beats) > 0.25) and beats[0] >= 0 and beats[-1] <= 6.0


@pytest.mark.parametrize("rate", [55.0, 130.0])
def test_pulse_is_in_the_skin_at_the_true_rate_and_not_in_the_background(synth_clip, rate):
    clip_dir, truth = synth_clip(duration_s=10.0, width=320, height=240, heart_rate_bpm=rate, hrv_sd_ms=10.0)
    packets = list(read_video_packets(clip_dir / "vid.avi"))
    with FaceTracker(static_image_mode=True) as tracker:
        face = tracker.process(packets[0].image)
    assert face is not None
    skin = _region_green(packets, face, "left_cheek") + _region_green(packets, face, "forehead")
    skin_bpm, skin_share = _dominant_bpm(skin, 30.0)
    assert skin_bpm == pytest.approx(truth.heart_rate_bpm, abs=2.5)
    assert skin_share > 0.2
    background = np.array([p.image[5:40, 5:40, 1].mean() for p in packets])  # top-left corner: the wall
    assert _power_near(background, 30.0, truth.heart_rate_bpm) < _power_near(skin, 30.0, truth.heart_rate_bpm) / 20


def test_blue_and_red_follow_blood_volume_weights(synth_clip):
    clip_dir, _ = synth_clip(duration_s=8.0, width=320, height=240, noise_sd=0.0, breath_amplitude=0.0,
                             breath_motion_px=0.0)
    packets = list(read_video_packets(clip_dir / "vid.avi"))
    with FaceTracker(static_image_mode=True) as tracker:
        mask = tracker.process(packets[0].image).region_mask("left_cheek")
    means = np.array([[p.image[..., c][mask].mean() for c in range(3)] for p in packets])  # B, G, R
    relative = means / means.mean(axis=0) - 1
    amplitude = relative.std(axis=0)
    assert amplitude[1] > amplitude[0] > amplitude[2] > 0  # green > blue > red


def test_still_photo_has_no_pulse():
    packets, truth = generate_frames(SynthConfig(duration_s=3.0, width=320, height=240, still=True, noise_sd=0.0,
                                                 breath_amplitude=0.0, breath_motion_px=0.0))
    images = [p.image for p in packets]
    assert all(np.array_equal(images[0], image) for image in images[1:])
    assert len(images) == 90


def test_harmonic_ratio_shapes_the_waveform():
    t = np.arange(0, 30, 1 / 30)
    beats = np.arange(0, 32, 1.0)  # 60 bpm, regular
    for ratio, expected in ((0.0, False), (1.5, True)):
        wave = ppg_waveform(t, beats, harmonic_ratio=ratio, dicrotic_ratio=0.0)
        freqs, power = periodogram(wave, fs=30)
        fundamental = power[np.argmin(abs(freqs - 1.0))]
        second = power[np.argmin(abs(freqs - 2.0))]
        assert (second > fundamental) == expected


def test_beat_times_follow_drift_and_variability():
    config = SynthConfig(duration_s=60.0, heart_rate_bpm=60.0, heart_rate_drift_bpm=30.0, hrv_sd_ms=40.0,
                         respiratory_sinus_arrhythmia_bpm=0.0)
    beats = beat_times(config, np.random.default_rng(0))
    ibis = np.diff(beats)
    early, late = ibis[beats[1:] < 15], ibis[(beats[1:] > 45) & (beats[1:] < 60)]
    assert 60 / early.mean() == pytest.approx(64, abs=4)
    assert 60 / late.mean() == pytest.approx(86, abs=5)
    successive = np.diff(ibis) * 1000
    assert 40 < np.sqrt(np.mean(successive**2)) < 80  # RMSSD ~ sqrt(2) x 40 ms


def test_synth_command_writes_a_clip(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "smartmirror.cli.app", "synth", str(out), "--duration", "2", "--width", "320",
         "--height", "240", "--heart-rate", "90"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (out / "vid.avi").stat().st_size > 10_000
    assert "frames" in result.stdout
    assert len(list(read_video_packets(out / "vid.avi"))) == 60
