"""The agent's context and history sample from typed states: the live engine's numbers, clipped and gap-safe."""

from __future__ import annotations

import math

import pytest
from state_examples import emotion_state, fatigue_state, stressed, vitals_state

from smartmirror.agent import InterventionAgent, parse_context
from smartmirror.agent.from_states import (
    HeartRateBaseline,
    context_from_states,
    local_hour,
    sample_from_states,
    stress_score,
)
from smartmirror.live.engine import Engine


def test_context_maps_states_to_the_agent_contract_and_suggests_pulling_over():
    baseline = HeartRateBaseline()
    states = dict(face={"face_present": True}, fatigue=fatigue_state(drowsiness_probability=0.9, perclos=0.3,
                                                                     microsleep=True),
                  emotion=emotion_state(valence=-0.4, arousal=1.7))
    first = context_from_states(**states, vitals=vitals_state(heart_rate_bpm=70.0, stress=stressed(88.0)),
                                mode="driver", now=1000.0, minutes_in_session=2.5, hour_of_day=14.25,
                                heart_rate_baseline=baseline)
    second = context_from_states(**states, vitals=vitals_state(heart_rate_bpm=82.0, stress=stressed(88.0)),
                                 mode="driver", now=1001.0, minutes_in_session=2.6, hour_of_day=14.26,
                                 heart_rate_baseline=baseline)
    assert first == {"mode": "driver", "face_present": True, "now": 1000.0, "minutes_in_session": 2.5,
                     "hour_of_day": 14.25, "microsleep": True, "drowsiness_probability": 0.9, "perclos": 0.3,
                     "stress_score": 88.0, "emotion_valence": -0.4, "emotion_arousal": 1.0,  # clipped to -1..1
                     "heart_rate_delta_bpm": 0.0}
    assert second["heart_rate_delta_bpm"] == pytest.approx(6.0)  # 82 against the median of 70 and 82
    parsed = parse_context(first, default_mode="wellness")
    assert parsed.microsleep and parsed.emotion_arousal == 1.0
    suggestion = InterventionAgent("driver").suggest(first)
    assert suggestion is not None and suggestion.action == "pull_over"


def test_missing_states_and_unmeasured_numbers_are_left_out():
    context = context_from_states(None, None, None, None, mode="wellness", now=5.0, minutes_in_session=0.0,
                                  hour_of_day=9.0, heart_rate_baseline=HeartRateBaseline())
    assert context == {"mode": "wellness", "face_present": False, "now": 5.0, "minutes_in_session": 0.0,
                       "hour_of_day": 9.0, "microsleep": False}
    no_face = fatigue_state(face_present=False, status="no_face")  # every number None
    nan_rate = vitals_state(heart_rate_bpm=math.nan)
    context = context_from_states({"face_present": False}, no_face, None, nan_rate, mode="kiosk", now=5.0,
                                  minutes_in_session=0.0, hour_of_day=9.0, heart_rate_baseline=HeartRateBaseline())
    assert "drowsiness_probability" not in context and "heart_rate_delta_bpm" not in context
    assert "stress_score" not in context and stress_score(nan_rate) is None and stress_score(None) is None
    parse_context(context, default_mode="kiosk")  # still a valid context: the agent fills the defaults


def test_heart_rate_baseline_is_the_median_of_the_first_30_readings():
    baseline = HeartRateBaseline()
    deltas = [baseline.delta_bpm(60.0 + i) for i in range(40)]
    assert deltas[0] == 0.0 and deltas[2] == pytest.approx(1.0)       # 62 against median(60, 61, 62)
    assert deltas[-1] == pytest.approx(99.0 - 74.5)                    # readings 31.. no longer move it
    baseline.reset()
    assert baseline.delta_bpm(80.0) == 0.0


def test_sample_holds_the_history_columns():
    from smartmirror.ui.history import SAMPLE_COLUMNS

    sample = sample_from_states({"face_present": True}, fatigue_state(drowsiness_probability=0.2, perclos=0.05,
                                                                      blinks_per_min=14.0),
                                emotion_state(label="happy", valence=0.7, arousal=0.2),
                                vitals_state(heart_rate_bpm=71.0, stress=stressed(20.0, "low")),
                                mode="wellness", now=1234.5)
    assert sample == {"t_wall": 1234.5, "mode": "wellness", "face_present": True, "heart_rate_bpm": 71.0,
                      "stress_score": 20.0, "drowsiness_probability": 0.2, "perclos": 0.05, "blinks_per_min": 14.0,
                      "emotion_label": "happy", "emotion_valence": 0.7, "emotion_arousal": 0.2}
    assert set(SAMPLE_COLUMNS) <= set(sample)
    empty = sample_from_states(None, None, None, None, mode="wellness", now=1.0)
    assert all(empty[c] is None for c in SAMPLE_COLUMNS) and empty["face_present"] is False


@pytest.mark.parametrize("now", [1000.0, 1_780_000_000.0])
def test_the_same_numbers_as_the_live_engine(now):
    """The functions give exactly what ``Engine.context`` and ``Engine.sample`` give for the same states."""
    engine = Engine([], mode="driver")
    states = {"face": {"face_present": True}, "fatigue": fatigue_state(drowsiness_probability=1.2, perclos=0.25),
              "emotion": emotion_state(valence=0.3, arousal=-0.2),
              "vitals": vitals_state(heart_rate_bpm=75.0, stress=stressed(140.0))}
    for name, state in states.items():
        engine.store.put(name, state)
    baseline = HeartRateBaseline()
    minutes = max(0.0, (now - engine._session_start_wall) / 60.0)
    for step in range(3):
        ours = context_from_states(**states, mode="driver", now=now + step, minutes_in_session=minutes,
                                   hour_of_day=local_hour(now + step), heart_rate_baseline=baseline)
        theirs = engine.context(now=now + step)
        theirs_minutes = theirs.pop("minutes_in_session")
        assert ours.pop("minutes_in_session") == pytest.approx(theirs_minutes, abs=0.1)
        assert ours == theirs
    assert sample_from_states(**states, mode="driver", now=now) == engine.sample(now=now)
