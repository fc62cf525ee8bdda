"""Analyzer states with chosen values (every other field as the analyzer leaves it when nothing is measured)."""

from __future__ import annotations

import dataclasses
from typing import Any

from smartmirror.emotion.state import EmotionState
from smartmirror.fatigue.state import FatigueState
from smartmirror.vitals.state import StressEstimate, VitalsState, VitalsWarmup


def fatigue_state(**values: Any) -> FatigueState:
    """A fatigue state with a face (status "ok") and ``values``; unset measurements None."""
    empty = FatigueState.without_face(10.0, mode="wellness", calibrated=True, microsleep=False,
                                      drowsiness_method="rules", alert=False, alert_reason=None)
    return dataclasses.replace(empty, **{"face_present": True, "status": "ok", **values})


def vitals_state(**values: Any) -> VitalsState:
    """A vitals state with a face and ``values``; no reading yet unless given."""
    base = VitalsState(
        face_present=True, message=None, heart_rate_bpm=None, heart_rate_confidence=0.0, pulse_snr_db=None,
        pulse_waveform=(), pulse_waveform_rate_hz=30.0, warmup_s_left=VitalsWarmup(8.0, 10.0, 20.0, 32.0),
        hrv=None, respiration_rate_bpm=None, spo2_percent=None, spo2_calibrated=False, stress=None,
        liveness=None, method="pos",
    )
    return dataclasses.replace(base, **values)


def stressed(score: float, level: str = "high") -> StressEstimate:
    return StressEstimate(level=level, score=score, basis="heart_rate_bands")


def emotion_state(**values: Any) -> EmotionState:
    """A neutral emotion state with a face and ``values``."""
    base = EmotionState(face_present=True, label="neutral", confidence=0.9,
                        probabilities={"neutral": 0.9, "happy": 0.1}, valence=0.0, arousal=0.0,
                        raw_label="neutral", tired_evidence=None, t=10.0)
    return dataclasses.replace(base, **values)
