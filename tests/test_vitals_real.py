"""Heart rate on a real recording with a contact reference: PhysRecorder's example (MIT licence).

The fixture (tests/fixtures/physrecorder_v01_trace.npz, made by scripts/make_physrecorder_fixture.py) holds the
skin-ROI colour trace the project's own per-frame code measures on the recording's 602 lossless frames (a seated
person, 640 x 480, 20 s), and the finger oximeter's pulse wave recorded alongside; no pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smartmirror.dataset import GroundTruth, reference_heart_rates
from smartmirror.vitals import heart
from smartmirror.vitals.pipeline import VitalsTrace, analyze_trace
from smartmirror.vitals.rppg import DEFAULT_METHOD
from smartmirror.vitals.signal import bandpass

FIXTURE = Path(__file__).parent / "fixtures" / "physrecorder_v01_trace.npz"


@pytest.fixture(scope="module")
def recording() -> tuple[VitalsTrace, GroundTruth]:
    data = np.load(FIXTURE)
    trace = VitalsTrace(data["times_s"], data["rgb"], data["presence"], data["skin_fraction"], data["face_y"])
    truth = GroundTruth(ppg=data["bvp"].astype(np.float64), times_s=data["bvp_times_s"], heart_rate_bpm=None)
    return trace, truth


def test_the_fixture_is_a_real_face_trace_with_a_contact_pulse(recording):
    trace, truth = recording
    assert trace.frames == 602 and np.isfinite(trace.rgb).all()
    assert 19.5 < trace.times_s[-1] - trace.times_s[0] < 20.5
    green = bandpass(trace.rgb[:, 1] / trace.rgb[:, 1].mean(), sampling_rate=30.0, low_hz=0.7, high_hz=3.0)
    assert 0.0003 < np.std(green) < 0.01                         # a real pulse: well under 1 % of the skin's colour
    assert len(truth.ppg) > 350


def test_default_method_reads_the_contact_heart_rate(recording):
    trace, truth = recording
    result = analyze_trace(trace, method=DEFAULT_METHOD)
    ends = np.array([r.t_s for r in result.readings])
    reference = reference_heart_rates(truth, ends)
    contact = float(np.nanmean(reference[ends - trace.times_s[0] >= heart.WINDOW_S - 0.1]))
    assert 65 < contact < 78                                     # the oximeter: about 71 beats/min
    assert result.heart_rate.heart_rate_bpm is not None
    assert result.heart_rate.heart_rate_bpm == pytest.approx(contact, abs=2.5)
    answered = [(r.heart_rate_bpm, ref) for r, ref in zip(result.readings, reference, strict=True)
                if r.heart_rate_bpm is not None and np.isfinite(ref)]
    assert len(answered) >= 0.8 * len(result.readings)
    assert np.median([abs(a - b) for a, b in answered]) < 3.0
    assert result.liveness is True


def test_the_same_colours_out_of_order_give_no_heart_rate(recording):
    trace, _ = recording
    shuffled = np.random.default_rng(0).permutation(trace.rgb)   # every frame's real colour, the pulse destroyed
    scrambled = VitalsTrace(trace.times_s, shuffled, trace.presence, trace.skin_fraction, trace.face_y)
    result = analyze_trace(scrambled, method=DEFAULT_METHOD)
    assert result.heart_rate.heart_rate_bpm is None               # null, not a guess


def test_the_pulse_stands_above_the_cameras_noise_floor_and_shuffled_colours_do_not(recording):
    """The blood-volume colour power at the rate over the 5-12 Hz floor (sensor and compression noise only):
    the real pulse is well above the confidence ramp, the same colours in random order are below its start."""
    trace, _ = recording
    low, high = heart.PATH_FLOOR_MARGIN_DB
    window = slice(0, int(heart.WINDOW_S * 30))
    real = heart.noise_floor_margin_db(trace.rgb[window], sampling_rate=30.0, bpm=71.0)
    assert real is not None and real > high
    shuffled = np.random.default_rng(0).permutation(trace.rgb)[window]
    assert heart.noise_floor_margin_db(shuffled, sampling_rate=30.0, bpm=71.0) < low
    assert heart.floor_margin_score(np.array([real])) == 1.0
    assert heart.floor_margin_score(np.array([low - 1.0])) == 0.0
    assert heart.noise_floor_margin_db(trace.rgb[:8], sampling_rate=30.0, bpm=71.0) is None
