"""The temporal building blocks on hand-made signals: baselines, PERCLOS, closures, speech."""

from __future__ import annotations

import numpy as np
import pytest

from smartmirror.fatigue.calibration import Baseline
from smartmirror.fatigue.events import EyeClosureDetector, PerclosMeter, crossing_time
from smartmirror.fatigue.mouth import MouthMotion


def feed_baseline(baseline: Baseline, times: np.ndarray, values: np.ndarray) -> list[float]:
    out, last = [], None
    for t, v in zip(times, values, strict=True):
        out.append(baseline.update(float(t), float(v), 0.0 if last is None else float(t - last)))
        last = t
    return out


def test_baseline_calibrates_then_relearns_slowly_with_a_floor():
    times = np.arange(0, 400, 0.1)
    values = np.where(times < 60, 0.30, 0.24)  # the person's eyes settle lower after a minute
    values = np.where((times > 100) & (times < 115), 0.02, values)  # a 15 s closure
    baseline = Baseline(75.0, calibration_s=5.0, window_s=120.0, relearn_tau_s=120.0, min_fraction=0.7)
    out = np.array(feed_baseline(baseline, times, values))
    assert not Baseline(75.0, 5.0).calibrated
    assert out[10] == pytest.approx(0.30) and baseline.calibrated_value_ == pytest.approx(0.30)
    assert out[times == 90.0][0] > 0.285  # 30 s after the change: still near the calibrated value
    assert abs(out[times == 115.0][0] - out[times == 99.0][0]) < 0.01  # a closure barely moves it
    assert out[-1] == pytest.approx(0.24, abs=0.01)  # minutes later: re-learned
    floor = Baseline(75.0, calibration_s=5.0, window_s=20.0, relearn_tau_s=5.0, min_fraction=0.7)
    out = feed_baseline(floor, times, np.where(times < 10, 0.3, 0.05))
    assert min(out) == pytest.approx(0.21)  # never below 70 % of the calibrated 0.30
    with pytest.raises(ValueError, match="percentile"):
        Baseline(150.0, 5.0)


def test_crossing_time_interpolates():
    assert crossing_time(1.0, 0.0, 2.0, 1.0, 0.25) == pytest.approx(1.25)
    assert crossing_time(0.0, 1.0, 0.1, 0.0, 0.8) == pytest.approx(0.02)
    assert crossing_time(0.0, 0.5, 1.0, 0.5, 0.5) == 1.0


def test_perclos_is_time_weighted_windowed_and_ignores_gaps():
    meter = PerclosMeter(window_s=60.0, max_gap_s=1.0)
    assert meter.perclos() is None
    # 10 s at 10 fps, frames 2.0 .. 3.9 s fully closed. Between two frames the closure is linear, so the 0.8
    # level is crossed at 1.98 s as the lids close and at 3.92 s as they open: 1.94 s closed.
    for i in range(101):
        meter.update(i / 10, 1.0 if 20 <= i < 40 else 0.0, continuous=True)
    assert meter.perclos() == pytest.approx(1.94 / 10.0, abs=1e-9)
    # a 5 s gap (no face) counts neither way, then 100 s of open eyes push the closure out of the window
    meter.update(15.0, 0.0, continuous=False)
    for ti in np.arange(15.1, 115.0, 0.1):
        meter.update(float(ti), 0.0, continuous=True)
    assert meter.perclos() == 0.0
    assert meter.observed_s() == pytest.approx(60.0, abs=0.11)
    assert meter.total_perclos() == pytest.approx(1.94 / (10.0 + 99.9), abs=1e-3)


def test_eye_closure_detector_durations_do_not_depend_on_frame_rate():
    for fps in (10, 15, 30, 60):
        detector = EyeClosureDetector()
        events, durations = [], []
        for ti in np.arange(0, 5, 1 / fps):
            # linear lid closure: 0 -> 1 over 0.1 s from t=1.0; open again over 0.1 s from t=1.2
            c = float(np.interp(ti, [1.0, 1.1, 1.2, 1.3, 3.0, 3.1, 3.9, 4.0], [0, 1, 1, 0, 0, 1, 1, 0]))
            new = detector.update(float(ti), c, continuous=True)
            events += new
            if "blink" in new:
                durations.append(detector.last_blink_duration_s)
        assert events.count("blink") == 1, fps
        assert events.count("long_closure") == 1 and events.count("microsleep") == 1, fps
        # at the 50 % level the blink lasts from 1.05 to 1.25 s
        assert durations[0] == pytest.approx(0.2, abs=1e-6), fps


def test_a_dip_that_does_not_reopen_the_eye_is_one_closure():
    detector = EyeClosureDetector()
    events = []
    for ti, c in [(0.0, 0.0), (0.1, 0.9), (0.2, 0.45), (0.3, 0.9), (0.4, 0.0)]:  # 0.45: above the reopen level
        events += detector.update(ti, c, continuous=True)
    assert events == ["blink"]


def test_mouth_motion_counts_speech_reversals_not_noise():
    rng = np.random.default_rng(0)
    still, talk = MouthMotion(), MouthMotion()
    for ti in np.arange(0, 4, 1 / 30):
        still.update(float(ti), 0.33 + rng.normal(0, 0.005))
        talk.update(float(ti), 0.33 + 0.1 * (0.5 - 0.5 * np.cos(2 * np.pi * 4 * ti)))
    assert not still.talking(4.0) and len(still.reversals) == 0
    assert talk.talking(4.0) and talk.count_between(0, 4) >= 25


def test_mouth_motion_tells_syllable_rhythm_from_the_jitter_of_a_held_open_mouth():
    """A mouth held open at MAR 1.3 with FaceMesh-like frame jitter (+-0.1) is not speech; 0.35 <-> 0.7 at
    4-6 syllables a second is, and so is the slow 1 Hz talk of a drawl; a 0.3 Hz opening and closing is not."""
    rng = np.random.default_rng(1)
    times = np.arange(0, 6, 1 / 30)
    held, jittery_talk = MouthMotion(), MouthMotion()
    for ti in times:
        held.update(float(ti), 1.3 + rng.uniform(-0.1, 0.1), baseline=0.4)
        rate = 4.0 + 2.0 * (ti > 3)
        jittery_talk.update(float(ti), 0.35 + 0.35 * (0.5 - 0.5 * np.cos(2 * np.pi * rate * ti))
                            + rng.normal(0, 0.02), baseline=0.35)
    assert held.count_between(0, 6) <= 2 and not held.talking(6.0)
    assert jittery_talk.talking(6.0) and jittery_talk.count_between(0, 6) >= 30
    drawl, slow = MouthMotion(), MouthMotion()
    for ti in times:
        drawl.update(float(ti), 0.35 + 0.3 * (0.5 - 0.5 * np.cos(2 * np.pi * 1.2 * ti)), baseline=0.35)
        slow.update(float(ti), 0.35 + 0.8 * (0.5 - 0.5 * np.cos(2 * np.pi * 0.3 * ti)), baseline=0.35)
    assert drawl.talking(6.0)
    assert slow.count_between(0, 6) == 0 and not slow.talking(6.0)
