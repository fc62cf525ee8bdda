"""The live panels draw the analyzers' typed states (Streamlit's AppTest runs the real render functions)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _panels_page(kind: str) -> None:
    """The page under test: one snapshot of typed states ("measured") or of nothing yet ("empty")."""
    import dataclasses
    import sys

    sys.path.insert(0, "tests")
    from state_examples import emotion_state, fatigue_state, stressed, vitals_state

    from smartmirror.identity.state import IdentityState
    from smartmirror.live.store import STATUS_OK, StateEntry
    from smartmirror.ui import panels
    from smartmirror.vitals.state import HrvSummary, VitalsWarmup

    vitals = vitals_state(heart_rate_bpm=71.6, heart_rate_confidence=0.82, pulse_waveform=(0.0, 1.0, -1.0, 0.5),
                          hrv=HrvSummary(40.0, 35.2, 12.0, None, 90.0), respiration_rate_bpm=14.4,
                          stress=stressed(45.0, "moderate"), warmup_s_left=VitalsWarmup(0.0, 3.0, 0.0, 0.0))
    states = {
        "vitals": vitals,
        "emotion": emotion_state(label="happy", confidence=0.75, probabilities={"happy": 0.75, "neutral": 0.25},
                                 valence=0.6, arousal=0.1),
        "fatigue": fatigue_state(drowsiness_probability=0.42, perclos=0.08, blinks_per_min=16.0, yawns=2,
                                 microsleep=True),
        "identity": IdentityState(age_years=33.0, age_spread_years=2.5, gender="uncertain", gender_confidence=0.7,
                                  female_probability=0.7, frames_used=10, frames_with_face=10, frames_seen=12,
                                  reason="gender uncertain"),
    }
    if kind == "empty":
        states = {"vitals": dataclasses.replace(vitals_state(), face_present=False, message="No face in view.")}
    snapshot = {name: StateEntry(name, STATUS_OK, state) for name, state in states.items()}
    panels.render_vitals(snapshot)
    panels.render_emotion(snapshot)
    panels.render_fatigue(snapshot, driver=True)
    panels.render_identity(snapshot)


def _texts(app: AppTest) -> list[str]:
    return [p.proto.text for p in app.get("progress")] + [c.value for c in app.caption]


def test_panels_show_the_typed_states_numbers():
    app = AppTest.from_function(_panels_page, args=("measured",)).run(timeout=30)
    assert not app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Heart rate"] == "72 bpm" and metrics["Confidence"] == "82%"
    assert metrics["HRV (RMSSD)"] == "35 ms" and metrics["Breaths/min"] == "14"
    assert metrics["Blinks"] == "16 /min" and metrics["Yawns"] == "2"
    assert metrics["Age"] == "33 years" and metrics["Gender"] == "uncertain"
    texts = _texts(app)
    assert "SpO2: measuring... 3 s" in texts and "Stress: moderate (45/100)" in texts
    assert "Emotion: happy (75%)" in texts and "happy 75%" in texts
    assert "Valence +0.60 (unpleasant to pleasant)" in texts
    assert "Drowsiness 42%" in texts and "PERCLOS (eyes closed) 8%" in texts
    assert [e.value for e in app.error] == ["Microsleep detected: pull over somewhere safe and rest."]


def test_panels_without_measurements_say_measuring():
    app = AppTest.from_function(_panels_page, args=("empty",)).run(timeout=30)
    assert not app.exception
    assert {m.label: m.value for m in app.metric}["Heart rate"] == "—"
    texts = _texts(app)
    assert "No face in view." in texts and "Stress: measuring..." in texts
    assert "Emotion: measuring... (—)" in texts and "Drowsiness —" in texts and "measuring..." in texts
