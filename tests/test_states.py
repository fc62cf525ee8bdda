"""The analyzers' typed states: docs/states.md lists exactly their fields, to_json() gives exactly those keys in
plain JSON, and the REST API's schema and answers carry the same."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pytest
from state_examples import emotion_state, fatigue_state, vitals_state

from smartmirror.analyzer import State, json_value
from smartmirror.emotion.state import EmotionState, EmotionSummary
from smartmirror.fatigue.model import SCORE_TERMS
from smartmirror.fatigue.state import DrowsinessEvidence, FatigueState, FatigueSummary
from smartmirror.frames import FramePacket
from smartmirror.identity.state import IdentityState
from smartmirror.report_model import FacesSummary, Quality, Report
from smartmirror.vitals.spo2 import SpO2Estimate
from smartmirror.vitals.state import HrvSummary, StressEstimate, VitalsState, VitalsWarmup

DOCUMENTED = (VitalsState, VitalsWarmup, HrvSummary, StressEstimate, FatigueState, DrowsinessEvidence, EmotionState,
              IdentityState, Report, EmotionSummary, FatigueSummary, Quality, FacesSummary, SpO2Estimate)


def documented_keys(text: str) -> dict[str, list[str]]:
    """Class name -> the keys of the table after its heading (``## Name``) or label line (`` `key` (`Name` ``)."""
    tables: dict[str, list[str]] = {}
    label = None
    for line in text.splitlines():
        heading = re.match(r"^## (\w+)", line)
        named = re.match(r"^`\w+` \(`(\w+)`", line)
        row = re.match(r"^\| `(\w+)` \|", line)
        if heading:
            label = "Report" if line.startswith("## The clip report") else heading.group(1)
        elif named:
            label = named.group(1)
        elif row and label:
            tables.setdefault(label, []).append(row.group(1))
        elif not line.startswith("|") and label in tables:
            label = None  # the table ended
    return tables


def test_docs_list_every_field_of_every_state_in_order(repo_root):
    tables = documented_keys((repo_root / "docs" / "states.md").read_text())
    for cls in DOCUMENTED:
        assert tables.get(cls.__name__) == [f.name for f in dataclasses.fields(cls)], cls.__name__


def test_drowsiness_evidence_has_one_field_per_score_term():
    assert [f.name for f in dataclasses.fields(DrowsinessEvidence)] == [term for term, *_ in SCORE_TERMS]


def test_to_json_is_plain_json_with_non_finite_numbers_as_null():
    state = vitals_state(heart_rate_bpm=np.float64(71.5), pulse_snr_db=math.inf, pulse_waveform=(np.float32(0.5),),
                         stress=StressEstimate("low", np.float64(12.0), "hrv"), liveness=np.bool_(True))
    data = state.to_json()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["heart_rate_bpm"] == 71.5 and data["pulse_snr_db"] is None and data["pulse_waveform"] == [0.5]
    assert data["stress"] == {"level": "low", "score": 12.0, "basis": "hrv"} and data["liveness"] is True
    assert data["warmup_s_left"] == {"heart_rate": 8.0, "spo2": 10.0, "respiration": 20.0, "hrv": 32.0}
    assert isinstance(state, State) and json_value(state) == data and json_value({"s": state}) == {"s": data}
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.heart_rate_bpm = 80.0


def test_real_fatigue_states_have_the_same_45_keys_with_or_without_a_face(astronaut_bgr, astronaut_face):
    from smartmirror.fatigue import FatigueAnalyzer

    analyzer = FatigueAnalyzer()
    seen = analyzer.update(FramePacket(0.0, astronaut_bgr, 0), astronaut_face)
    gone = analyzer.update(FramePacket(0.1, astronaut_bgr, 1), None)
    keys = [f.name for f in dataclasses.fields(FatigueState)]
    assert len(keys) == 45 and list(seen.to_json()) == keys and set(gone.to_json()) == set(keys)
    assert seen.to_json()["drowsiness_evidence"] == dataclasses.asdict(seen.drowsiness_evidence)
    assert gone.status == "no_face" and gone.to_json()["drowsiness_evidence"] is None and gone.ear is None


def test_real_vitals_states_live_and_clip(astronaut_bgr, astronaut_face):
    from smartmirror.vitals.analyzer import WARMUP_S, VitalsAnalyzer

    live = VitalsAnalyzer()
    states = [live.update(FramePacket(i / 30, astronaut_bgr, i), astronaut_face) for i in range(45)]
    state = states[-1]
    assert isinstance(state, VitalsState) and state.face_present and state.method == "pos"
    assert state.heart_rate_bpm is None and state.warmup_s_left.heart_rate > 0  # 1.5 s: still warming up
    assert set(dataclasses.asdict(state.warmup_s_left)) == set(WARMUP_S)
    assert list(state.to_json()) == [f.name for f in dataclasses.fields(VitalsState)]
    clip = VitalsAnalyzer(live=False)
    assert clip.update(FramePacket(0.0, astronaut_bgr, 0), astronaut_face) is None  # the report needs summary()


def test_api_answers_and_schema_carry_exactly_the_state_fields():
    from smartmirror.api.routes.models import FrameResult, SessionStatus

    states = {"vitals": vitals_state(heart_rate_bpm=70.0, hrv=HrvSummary(40.0, 30.0, 10.0, None, 80.0)),
              "emotion": emotion_state(), "fatigue": fatigue_state(perclos=0.1, blinks=3)}
    result = FrameResult(session_id="s", frame_index=0, timestamp_s=0.0, face_detected=True, face=None,
                         heart_rate_bpm=70.0, heart_rate_confidence=0.0, faces_seen=1, processing_ms=1.0,
                         **{name: state.to_json() for name, state in states.items()})
    answer = json.loads(result.model_dump_json())
    for name, state in states.items():
        assert answer[name] == state.to_json()
    schema = SessionStatus.model_json_schema()["$defs"]
    for cls in (VitalsState, EmotionState, FatigueState, VitalsWarmup, HrvSummary, DrowsinessEvidence):
        assert list(schema[cls.__name__]["properties"]) == [f.name for f in dataclasses.fields(cls)]
