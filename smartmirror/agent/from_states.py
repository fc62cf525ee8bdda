"""The agent's context and the session-history sample, built from the analyzers' typed states.

The live engine calls these once a second with the latest states in its store (each may be None: not measured
yet, or the analyzer is unavailable); missing or non-finite numbers are left out of the context (the agent then
uses the defaults of :mod:`smartmirror.agent.context`) and are None in the sample.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from smartmirror.analyzer import finite_number
from smartmirror.emotion.state import EmotionState
from smartmirror.fatigue.state import FatigueState
from smartmirror.vitals.state import VitalsState

__all__ = ["HeartRateBaseline", "context_from_states", "local_hour", "sample_from_states", "stress_score"]


class HeartRateBaseline:
    """The session's reference heart rate: the median of its first ``readings`` heart-rate readings (bpm).

    Not thread-safe: one caller (the engine's agent thread) feeds it.
    """

    def __init__(self, readings: int = 30):
        self.readings = readings
        self.values_: list[float] = []

    def delta_bpm(self, heart_rate_bpm: float) -> float:
        """Record ``heart_rate_bpm`` while the reference is still being learned; its distance from the reference."""
        if len(self.values_) < self.readings:
            self.values_.append(heart_rate_bpm)
        return heart_rate_bpm - float(np.median(self.values_))

    def reset(self) -> None:
        """Forget the readings (a new person)."""
        self.values_ = []


def stress_score(vitals: VitalsState | None) -> float | None:
    """The stress score 0..100 of a vitals state, or None while it has none."""
    return None if vitals is None or vitals.stress is None else finite_number(vitals.stress.score)


def local_hour(now: float) -> float:
    """The local wall-clock hour of ``now`` (seconds since the epoch), fractional, 0..24."""
    local = time.localtime(now)
    return (local.tm_hour + local.tm_min / 60.0 + local.tm_sec / 3600.0) % 24.0


def context_from_states(
    face: Mapping[str, Any] | None,
    fatigue: FatigueState | None,
    emotion: EmotionState | None,
    vitals: VitalsState | None,
    *,
    mode: str,
    now: float,
    minutes_in_session: float,
    hour_of_day: float,
    heart_rate_baseline: HeartRateBaseline,
) -> dict[str, Any]:
    """The agent's context (keys of :mod:`smartmirror.agent.context`) from the latest states.

    ``face`` is the engine's face-tracker entry (``face_present``); numbers are clipped to the contract's ranges;
    ``heart_rate_delta_bpm`` is the heart rate against ``heart_rate_baseline`` (which learns from it).
    """
    context: dict[str, Any] = {
        "mode": mode,
        "face_present": bool((face or {}).get("face_present", False)),
        "now": now,
        "minutes_in_session": minutes_in_session,
        "hour_of_day": hour_of_day,
        "microsleep": bool(fatigue is not None and fatigue.microsleep),
    }
    _put_number(context, "drowsiness_probability", None if fatigue is None else fatigue.drowsiness_probability,
                0.0, 1.0)
    _put_number(context, "perclos", None if fatigue is None else fatigue.perclos, 0.0, 1.0)
    _put_number(context, "stress_score", stress_score(vitals), 0.0, 100.0)
    _put_number(context, "emotion_valence", None if emotion is None else emotion.valence, -1.0, 1.0)
    _put_number(context, "emotion_arousal", None if emotion is None else emotion.arousal, -1.0, 1.0)
    heart_rate = None if vitals is None else finite_number(vitals.heart_rate_bpm)
    if heart_rate is not None:
        context["heart_rate_delta_bpm"] = heart_rate_baseline.delta_bpm(heart_rate)
    return context


def sample_from_states(face: Mapping[str, Any] | None, fatigue: FatigueState | None, emotion: EmotionState | None,
                       vitals: VitalsState | None, *, mode: str, now: float) -> dict[str, Any]:
    """One session-history sample (``t_wall`` and :data:`smartmirror.ui.history.SAMPLE_COLUMNS`): numbers only,
    None where not measured."""
    return {
        "t_wall": now,
        "mode": mode,
        "face_present": bool((face or {}).get("face_present", False)),
        "heart_rate_bpm": None if vitals is None else finite_number(vitals.heart_rate_bpm),
        "stress_score": stress_score(vitals),
        "drowsiness_probability": None if fatigue is None else finite_number(fatigue.drowsiness_probability),
        "perclos": None if fatigue is None else finite_number(fatigue.perclos),
        "blinks_per_min": None if fatigue is None else finite_number(fatigue.blinks_per_min),
        "emotion_label": None if emotion is None else emotion.label,
        "emotion_valence": None if emotion is None else finite_number(emotion.valence),
        "emotion_arousal": None if emotion is None else finite_number(emotion.arousal),
    }


def _put_number(context: dict[str, Any], key: str, value: float | None, low: float, high: float) -> None:
    number = finite_number(value)
    if number is not None:
        context[key] = min(max(number, low), high)
