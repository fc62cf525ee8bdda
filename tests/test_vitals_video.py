"""Vitals end to end on real synthetic videos (smartmirror.synth -> codec -> decode -> FaceMesh -> vitals).

Kept few and small (320x240): the signal chain's breadth is covered on colour traces in test_vitals_signal.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from smartmirror.face import FaceTracker
from smartmirror.frames import read_video_packets
from smartmirror.report import analyze_video
from smartmirror.vitals import VitalsAnalyzer
from smartmirror.vitals.signal import bandpass

SMALL = {"width": 320, "height": 240}


@pytest.mark.parametrize("rate", [48, 165])
def test_heart_rate_within_2_bpm_on_video_with_head_motion_and_noise(synth_clip, rate):
    folder, truth = synth_clip(duration_s=10, heart_rate_bpm=rate, hrv_sd_ms=30 * (72 / rate) ** 2,
                               head_motion_px=2.0, noise_sd=2.0, seed=rate, **SMALL)
    report = analyze_video(folder / "vid.avi", sections=())
    assert report["heart_rate_bpm"] == pytest.approx(truth.heart_rate_bpm, abs=2.0)
    assert report["heart_rate_confidence"] >= 0.5
    assert report["quality"]["liveness"] is True
    assert report["quality"]["face_detected_ratio"] == 1.0


def test_still_photo_video_has_no_heart_rate_and_fails_liveness(synth_clip):
    folder, _ = synth_clip(duration_s=10, still=True, head_motion_px=1.0, seed=3, **SMALL)
    report = analyze_video(folder / "vid.avi", sections=())
    assert report["heart_rate_bpm"] is None
    assert report["quality"]["liveness"] is False
    assert report["spo2_percent"] is None and report["stress"] is None


def test_dropped_frames_with_true_timestamps_on_video(synth_clip):
    folder, truth = synth_clip(video_name="vid.mkv", duration_s=10, heart_rate_bpm=88, drop_prob=0.25,
                               frame_jitter_s=0.006, seed=5, **SMALL)
    times = np.array([p.t for p in read_video_packets(folder / "vid.mkv")])
    assert len(times) < 0.85 * 300 and np.diff(times).max() > 1.5 / 30   # frames really are missing
    report = analyze_video(folder / "vid.mkv", sections=())
    assert report["quality"]["frames"] == len(times)
    assert report["heart_rate_bpm"] == pytest.approx(truth.heart_rate_bpm, abs=2.0)


def test_live_analyzer_reads_within_8_s_and_keeps_bounded_memory(synth_clip):
    folder, truth = synth_clip(duration_s=12, heart_rate_bpm=70, seed=8, **SMALL)
    analyzer = VitalsAnalyzer(max_seconds=10.0)
    first_reading_t = None
    states = []
    with FaceTracker() as tracker:
        for packet in read_video_packets(folder / "vid.avi"):
            state = analyzer.update(packet, tracker.process(packet.image))
            states.append(state)
            if first_reading_t is None and state.heart_rate_bpm is not None:
                first_reading_t = packet.t
    assert first_reading_t is not None and first_reading_t <= 8.0
    last = states[-1]
    assert last.heart_rate_bpm == pytest.approx(truth.heart_rate_bpm, abs=3.0)
    assert last.face_present is True and last.liveness is True
    assert len(last.pulse_waveform) == int(6 * last.pulse_waveform_rate_hz)
    assert last.warmup_s_left.heart_rate == 0.0 and last.warmup_s_left.hrv > 15.0
    assert last.spo2_percent is not None and last.spo2_calibrated in (True, False)
    trace = analyzer.trace()
    assert trace.times_s[-1] - trace.times_s[0] <= 10.0                 # bounded by max_seconds
    assert analyzer.summary()["heart_rate_bpm"] is not None
    analyzer.reset()
    assert analyzer.summary() is None


def test_extract_rppg_signal_follows_the_generated_pulse(synth_clip):
    import smartmirror

    folder, truth = synth_clip(duration_s=12, heart_rate_bpm=70, seed=8, **SMALL)  # shared with test_report
    times, signal = smartmirror.extract_rppg_signal(folder / "vid.avi", method="pos")
    assert len(times) == len(signal) > 250
    assert np.allclose(np.diff(times), 1 / 30)
    assert signal.min() == 0.0 and signal.max() == 1.0
    reference = np.interp(times, truth.frame_times_s, truth.ppg)
    band = {"sampling_rate": 30.0, "low_hz": 0.6, "high_hz": 4.0}
    # blood-volume orientation: peaks when the skin is darkest (the generator brightens with its waveform)
    assert np.corrcoef(bandpass(signal, **band), bandpass(reference, **band))[0, 1] < -0.7
    few, _ = smartmirror.extract_rppg_signal(folder / "vid.avi", frames=100)
    assert few[-1] < 100 / 30


def test_hrv_and_respiration_on_a_33_s_video(synth_clip):
    folder, truth = synth_clip(duration_s=33, heart_rate_bpm=66, respiration_rate_bpm=14, seed=11, **SMALL)
    report = analyze_video(folder / "vid.avi", sections=())
    intervals = np.diff(truth.beat_times_s) * 1000
    assert report["hrv"]["sdnn_ms"] == pytest.approx(np.std(intervals, ddof=1), abs=10.0)
    assert report["hrv"]["rmssd_ms"] == pytest.approx(np.sqrt(np.mean(np.diff(intervals) ** 2)), abs=10.0)
    assert report["hrv"]["lf_hf"] is None
    assert report["respiration_rate_bpm"] == pytest.approx(truth.respiration_rate_bpm, abs=2.0)
    assert report["stress"]["basis"] == "hrv"
