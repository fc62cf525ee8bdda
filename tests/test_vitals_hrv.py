"""HRV, respiration and stress on colour traces with the generator's own beats and breathing (fast)."""

from __future__ import annotations

import numpy as np
import pytest

from smartmirror.synth import SynthConfig
from smartmirror.vitals import hrv, stress
from smartmirror.vitals.pipeline import analyze_trace
from smartmirror.vitals.simulate import simulate_trace


def _true_sdnn_rmssd(beat_times_s: list[float]) -> tuple[float, float]:
    intervals = np.diff(beat_times_s) * 1000.0
    return float(np.std(intervals, ddof=1)), float(np.sqrt(np.mean(np.diff(intervals) ** 2)))


@pytest.mark.parametrize(("rate", "seed"), [(58, 1), (75, 2), (96, 3)])
def test_sdnn_and_rmssd_within_10_ms_of_the_generator_beats(rate, seed):
    config = SynthConfig(duration_s=36, heart_rate_bpm=rate, hrv_sd_ms=30 * (72 / rate) ** 2, seed=seed)
    trace, truth = simulate_trace(config, roi_noise=0.0002)
    result = analyze_trace(trace)
    sdnn, rmssd = _true_sdnn_rmssd(truth.beat_times_s)
    assert result.hrv is not None and result.hrv.clean_s >= hrv.MIN_CLEAN_S
    assert result.hrv.sdnn_ms == pytest.approx(sdnn, abs=10.0)
    assert result.hrv.rmssd_ms == pytest.approx(rmssd, abs=10.0)
    assert 0.0 <= result.hrv.pnn50 <= 100.0
    assert result.hrv.lf_hf is None                      # 36 s is far too short for the LF band
    assert result.hrv.stress_index > 0
    assert result.stress.basis == "hrv"


def test_hrv_needs_30_s_of_clean_beats():
    trace, _ = simulate_trace(SynthConfig(duration_s=20, heart_rate_bpm=70, seed=4), roi_noise=0.0002)
    result = analyze_trace(trace)
    assert result.heart_rate.heart_rate_bpm is not None
    assert result.hrv is not None and result.hrv.sdnn_ms is None and result.hrv.rmssd_ms is None
    assert result.stress.basis == "heart_rate_bands"     # no HRV: the documented cold-start fallback


def test_lf_hf_only_after_120_s():
    beats = np.cumsum(np.r_[0.0, 0.85 + 0.04 * np.sin(2 * np.pi * 0.1 * np.arange(170) * 0.85)])
    assert hrv.hrv_from_beats(beats[beats < 100]).lf_hf is None
    long = hrv.hrv_from_beats(beats)
    assert long.clean_s >= 120
    assert long.lf_hf is not None and long.lf_hf > 1.0   # a 0.1 Hz (LF) oscillation dominates


def test_interval_cleaning_drops_missed_and_extra_beats():
    beats = list(np.arange(0, 40, 0.8))
    del beats[10]                                          # a missed beat: one 1.6 s interval
    beats.insert(20, beats[19] + 0.3)                     # an extra beat: 0.3 + 0.5 s intervals
    intervals, ends = hrv.clean_intervals(np.array(beats))
    assert np.allclose(intervals, 800.0)
    assert len(intervals) == len(beats) - 1 - 3
    assert np.all(np.diff(ends) > 0)


def test_baevsky_stress_index_by_hand():
    ibi = np.array([800.0] * 12 + [850.0] * 6 + [760.0] * 2)   # mode bin 800-850 ms holds 12 of 20
    expected = (100 * 12 / 20) / (2 * 0.825 * 0.090)              # AMo / (2 Mo MxDMn)
    assert hrv.stress_index(ibi) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("breaths", "rate"), [(8, 62), (15, 72), (24, 90)])
def test_respiration_within_2_per_minute(breaths, rate):
    config = SynthConfig(duration_s=30, heart_rate_bpm=rate, respiration_rate_bpm=breaths, seed=breaths)
    trace, truth = simulate_trace(config, roi_noise=0.0003)
    result = analyze_trace(trace)
    assert result.respiration.rate_bpm == pytest.approx(truth.respiration_rate_bpm, abs=2.0)
    assert set(result.respiration.sources) >= {"baseline", "frequency", "motion"}


def test_respiration_survives_without_head_motion_and_needs_20_s():
    config = SynthConfig(duration_s=30, heart_rate_bpm=70, respiration_rate_bpm=12, breath_motion_px=0.0, seed=3)
    trace, _ = simulate_trace(config, roi_noise=0.0003)
    assert analyze_trace(trace).respiration.rate_bpm == pytest.approx(12.0, abs=2.0)
    short, _ = simulate_trace(SynthConfig(duration_s=15, respiration_rate_bpm=12, seed=3), roi_noise=0.0003)
    assert analyze_trace(short).respiration.rate_bpm is None


def test_stress_bases_and_bands():
    assert stress.stress_from_heart_rate(70).level == "low"
    assert stress.stress_from_heart_rate(90).level == "moderate"
    assert stress.stress_from_heart_rate(110).level == "high"
    assert stress.stress_from_heart_rate(80).score == pytest.approx(100 / 3, abs=0.1)
    banded = stress.estimate_stress(stress_index=None, heart_rate_bpm=95)
    assert banded.basis == "heart_rate_bands" and banded.level == "moderate"
    relative = stress.estimate_stress(stress_index=None, heart_rate_bpm=95, resting_heart_rate_bpm=90)
    assert relative.basis == "heart_rate_baseline" and relative.level == "low"   # +5 over this person's rest
    by_hrv = stress.estimate_stress(stress_index=700.0, heart_rate_bpm=62)
    assert by_hrv.basis == "hrv" and by_hrv.level == "high"                       # HRV wins over the rate
    assert stress.estimate_stress(stress_index=None, heart_rate_bpm=None) is None
    resting = stress.RestingHeartRate(min_readings=5)
    for value in (80, 64, 66, 90, 65, 63):
        resting.add(value)
    assert 63 <= resting.resting_bpm <= 65


def _beats(seconds: float, bpm: float, seed: int) -> np.ndarray:
    """Beat times (s) with a breathing swing and jitter, as a face's pulse gives them."""
    rng = np.random.default_rng(seed)
    times, t = [], 0.0
    while t < seconds:
        interval = 60.0 / bpm * (1 + 0.05 * np.sin(2 * np.pi * 0.25 * t)) + rng.normal(0, 0.02)
        t += interval
        times.append(t)
    return np.array(times)


@pytest.mark.parametrize("case", ["clean", "artefacts", "two_segments", "even", "three_intervals"])
def test_time_domain_indices_equal_neurokit2s_hrv_time(case):
    """SDNN, RMSSD and pNN50 without importing NeuroKit2: its own ``hrv_time`` on the same intervals is the
    reference, including its rule for intervals that do not follow each other (an artefact or a gap between)."""
    nk = pytest.importorskip("neurokit2")
    beats = _beats(60.0, 72.0, seed=3)
    if case == "clean":
        ibi, ends = hrv.clean_intervals(beats)
    elif case == "artefacts":  # a missed beat and an extra one: clean_intervals drops three intervals
        noisy = np.sort(np.concatenate([np.delete(beats, 20), [beats[40] + 0.3]]))
        ibi, ends = hrv.clean_intervals(noisy)
        assert len(ibi) < len(noisy) - 1
    elif case == "two_segments":  # as hrv_from_beats joins face segments: no interval bridges the gap
        first, second = hrv.clean_intervals(beats[:30]), hrv.clean_intervals(beats[40:])
        ibi, ends = np.concatenate([first[0], second[0]]), np.concatenate([first[1], second[1]])
    elif case == "even":
        ends = np.arange(1, 41) * 0.8
        ibi = np.full(40, 800.0)
    else:
        ibi, ends = hrv.clean_intervals(beats[:4])
    expected = nk.hrv_time({"RRI": ibi, "RRI_Time": ends})
    got = hrv.time_domain(ibi, ends)
    for value, key in zip(got, ("HRV_SDNN", "HRV_RMSSD", "HRV_pNN50"), strict=True):
        np.testing.assert_allclose(value, float(expected[key].iloc[0]), rtol=1e-12, atol=1e-12, err_msg=key)
