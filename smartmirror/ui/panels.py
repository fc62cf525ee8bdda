"""The live panels: heart rate and vitals, stress, emotion, fatigue, the suggestion card and the breathing pacer.

Each ``render_*`` function draws one panel from a store snapshot (``{name: StateEntry}``); a part marked
unavailable shows why instead of numbers; nothing here waits on a model. The analyzers' entries hold their typed
states (:class:`~smartmirror.vitals.state.VitalsState`, :class:`~smartmirror.emotion.state.EmotionState`,
:class:`~smartmirror.fatigue.state.FatigueState`, :class:`~smartmirror.identity.state.IdentityState`); the face
tracker's and the agent's entries are the engine's dicts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import streamlit as st

from smartmirror.agent import box_breathing_phase, explicit_reward
from smartmirror.agent.from_states import stress_score
from smartmirror.analyzer import finite_number
from smartmirror.emotion.labels import EMOTION_LABELS
from smartmirror.emotion.state import EmotionState
from smartmirror.fatigue.state import FatigueState
from smartmirror.identity.state import IdentityState
from smartmirror.live.engine import Engine
from smartmirror.live.store import STATUS_OK, STATUS_UNAVAILABLE, StateEntry
from smartmirror.ui.format import (
    DASH,
    clip01,
    heart_rate_text,
    measuring_text,
    percent_text,
    unit_text,
)
from smartmirror.ui.hold import ReadingHold
from smartmirror.vitals.analyzer import WARMUP_S  # seconds of face data each vital needs first
from smartmirror.vitals.state import VitalsState

TITLES = {"vitals": "Vitals", "emotion": "Emotion", "fatigue": "Fatigue", "identity": "Identity",
          "agent": "Suggestions", "face": "Face tracker"}
STALE_AFTER_S = 5.0


def _state(snapshot: Mapping[str, StateEntry], name: str) -> tuple[Any, StateEntry | None]:
    """The part's latest state when it is "ok" (None before its first one or when it failed), and its entry."""
    entry = snapshot.get(name)
    if entry is None or entry.status != STATUS_OK:
        return None, entry
    return entry.state, entry


def unavailable_note(name: str, entry: StateEntry | None) -> bool:
    """Show "<Part> unavailable: why" when the part failed; True when it did."""
    if entry is not None and entry.status == STATUS_UNAVAILABLE:
        st.warning(f"{TITLES.get(name, name.title())} unavailable: {entry.error or 'unknown error'}")
        return True
    return False


def render_status(snapshot: Mapping[str, StateEntry], engine: Engine, callback_p95_ms: float | None) -> None:
    """One line under the mirror: frame rates, face present, parts that are unavailable."""
    face, face_entry = _state(snapshot, "face")
    stats = engine.stats()
    parts = [f"{stats['delivered_fps']:.1f} fps shown", f"{stats['tracked_fps']:.1f} fps analysed"]
    if callback_p95_ms is not None:
        parts.append(f"callback p95 {callback_p95_ms:.1f} ms")
    if face is None or face_entry is None or face_entry.age_s() > STALE_AFTER_S:
        parts.append("no video yet" if stats["frames_submitted"] == 0 else "video paused")
    else:
        face = face or {}
        parts.append("face found" if face.get("face_present") else "no face in view")
        if (face.get("warning") or {}).get("message"):  # several faces: say which one is measured
            parts.append(face["warning"]["message"])
    st.caption(" · ".join(parts))
    down = [TITLES.get(n, n) for n, e in snapshot.items() if e.status == STATUS_UNAVAILABLE]
    if down:
        st.caption("Unavailable right now: " + ", ".join(sorted(down)) + " (the rest keeps running).")


def render_vitals(snapshot: Mapping[str, StateEntry], hold: ReadingHold | None = None) -> None:
    """Heart rate metric ("72 bpm" / "—"), confidence, pulse plot, HRV / respiration / SpO2, stress bar.

    With ``hold`` the last confident rate stays up to ``hold.hold_s`` seconds through weak windows, marked held.
    """
    st.subheader("Heart and breathing")
    vitals, entry = _state(snapshot, "vitals")
    if unavailable_note("vitals", entry):
        st.metric("Heart rate", DASH)
        return
    vitals: VitalsState | None
    face_present = vitals is not None and vitals.face_present
    confidence = None if vitals is None else finite_number(vitals.heart_rate_confidence)
    heart_rate = None if vitals is None else finite_number(vitals.heart_rate_bpm)
    held_for_s = None
    if hold is not None:
        held = hold.update(heart_rate, face_present=face_present, now=time.monotonic())
        heart_rate, held_for_s = held.bpm, held.held_for_s
    col_hr, col_conf = st.columns(2)
    col_hr.metric("Heart rate", heart_rate_text(heart_rate),
                  help="Remote photoplethysmography from skin colour; a wellness estimate, not a medical reading.")
    if held_for_s is not None:
        col_conf.metric("Confidence", f"held {held_for_s:.0f} s",
                        help="The newest windows are below the confidence gate: the last confident rate is held "
                             f"for at most {hold.hold_s:.0f} s.")
    else:
        col_conf.metric("Confidence", percent_text(confidence) if heart_rate is not None else DASH)
    if heart_rate is None:
        note = measuring_text(_warmup_left(vitals, "heart_rate")) if vitals is None or face_present else ""
        message = (vitals.message if vitals is not None else None) or ""
        st.caption(" · ".join(t for t in (note, message) if t) or "waiting for a face")
    wave = [] if vitals is None else [v for v in (finite_number(x) for x in vitals.pulse_waveform) if v is not None]
    if len(wave) > 1:
        st.markdown(pulse_svg(wave[-240:]), unsafe_allow_html=True)
    rmssd = None if vitals is None or vitals.hrv is None else finite_number(vitals.hrv.rmssd_ms)
    respiration = None if vitals is None else finite_number(vitals.respiration_rate_bpm)
    spo2 = None if vitals is None else finite_number(vitals.spo2_percent)
    readings = (
        ("HRV (RMSSD)", "hrv", None if rmssd is None else unit_text(rmssd, "ms"), None),
        ("Breaths/min", "respiration", None if respiration is None else unit_text(respiration, ""),
         "Respiration rate from the pulse and the head's motion with each breath."),
        ("SpO2", "spo2", None if spo2 is None else unit_text(spo2, "%"),
         "Experimental from an RGB camera (uncalibrated unless you calibrated it); not an oximeter."),
    )
    for column, (label, key, value, help_text) in zip(st.columns(3), readings, strict=True):
        if value is not None:
            column.metric(label, value, help=help_text)
        else:
            left = _warmup_left(vitals, key)
            need = WARMUP_S.get(key)
            done = 0.0 if left is None or not need else 1.0 - min(left, need) / need
            column.progress(clip01(done), text=f"{label}: {measuring_text(left)}")
    render_stress(vitals)


def _warmup_left(vitals: VitalsState | None, vital: str) -> float | None:
    """Seconds of face data ``vital`` ("heart_rate", "spo2", "respiration", "hrv") still needs (None: unknown)."""
    return None if vitals is None else finite_number(getattr(vitals.warmup_s_left, vital))


def pulse_svg(values: list[float], *, width: int = 420, height: int = 70) -> str:
    """The pulse waveform as a small inline SVG line (cheap to redraw twice a second, unlike a chart)."""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / max(1, len(values) - 1)
    scale = (height - 8) / span
    points = " ".join(f"{i * step:.1f},{height - 4 - (v - low) * scale:.1f}" for i, v in enumerate(values))
    return (
        f'<svg data-testid="pulse-waveform" viewBox="0 0 {width} {height}" width="100%" height="{height}" '
        f'preserveAspectRatio="none" role="img" aria-label="pulse waveform, last seconds">'
        f'<polyline points="{points}" fill="none" stroke="#e0245e" stroke-width="2" '
        f'vector-effect="non-scaling-stroke"/></svg>'
    )


def render_stress(vitals: VitalsState | None) -> None:
    """The stress bar: level and score 0..100."""
    score = stress_score(vitals)
    level = None if vitals is None or vitals.stress is None else vitals.stress.level
    if score is None:
        st.progress(0.0, text="Stress: measuring...")
    else:
        st.progress(clip01(score / 100.0), text=f"Stress: {level or ''} ({score:.0f}/100)".replace(":  (", ": ("))


def render_emotion(snapshot: Mapping[str, StateEntry]) -> None:
    """Emotion label and confidence, the 8-class distribution as bars, valence and arousal."""
    st.subheader("Emotion")
    emotion, entry = _state(snapshot, "emotion")
    if unavailable_note("emotion", entry):
        return
    emotion: EmotionState | None
    label = None if emotion is None else emotion.label
    confidence = None if emotion is None else finite_number(emotion.confidence)
    st.progress(clip01(confidence), text=f"Emotion: {label or 'measuring...'} ({percent_text(confidence)})")
    probabilities = {} if emotion is None else emotion.probabilities
    classes = list(EMOTION_LABELS) + [c for c in probabilities if c not in EMOTION_LABELS]
    left, right = st.columns(2)
    for i, name in enumerate(classes):
        p = finite_number(probabilities.get(name))
        (left if i % 2 == 0 else right).progress(clip01(p), text=f"{name} {percent_text(p)}")
    valence = None if emotion is None else finite_number(emotion.valence)
    arousal = None if emotion is None else finite_number(emotion.arousal)
    left, right = st.columns(2)
    left.progress(clip01(None if valence is None else (valence + 1) / 2),
                  text=f"Valence {DASH if valence is None else f'{valence:+.2f}'} (unpleasant to pleasant)")
    right.progress(clip01(None if arousal is None else (arousal + 1) / 2),
                   text=f"Arousal {DASH if arousal is None else f'{arousal:+.2f}'} (calm to excited)")


def render_identity(snapshot: Mapping[str, StateEntry]) -> None:
    """Opt-in age and gender, always with their uncertainty (never a bare label)."""
    st.subheader("Age and gender (opt-in)")
    identity, entry = _state(snapshot, "identity")
    if unavailable_note("identity", entry):
        return
    identity: IdentityState | None
    if identity is None or (identity.age_years is None and identity.gender is None):
        st.caption(f"measuring... {(identity.reason if identity is not None else None) or ''}".strip())
        return
    age, spread = finite_number(identity.age_years), finite_number(identity.age_spread_years)
    gender, confidence = identity.gender, finite_number(identity.gender_confidence)
    left, right = st.columns(2)
    left.metric("Age", DASH if age is None else f"{age:.0f} years",
                help=None if spread is None else f"spread (IQR) over frames: {spread:.1f} years")
    right.metric("Gender", gender if isinstance(gender, str) else DASH,
                 help="Models are known to be biased; below 80 % confidence the label is 'uncertain'.")
    right.caption(f"confidence {percent_text(confidence)}")


def render_fatigue(snapshot: Mapping[str, StateEntry], *, driver: bool = False) -> None:
    """Drowsiness %, PERCLOS, blinks/min, yawns (driver mode: alerts on top)."""
    st.subheader("Fatigue")
    fatigue, entry = _state(snapshot, "fatigue")
    if unavailable_note("fatigue", entry):
        return
    fatigue: FatigueState | None
    if driver and fatigue is not None and fatigue.microsleep:
        st.error("Microsleep detected: pull over somewhere safe and rest.")
    elif driver and fatigue is not None and fatigue.alert:
        st.error("You look drowsy: take a break soon.")
    drowsiness = None if fatigue is None else finite_number(fatigue.drowsiness_probability)
    st.progress(clip01(drowsiness), text=f"Drowsiness {percent_text(drowsiness)}")
    perclos = None if fatigue is None else finite_number(fatigue.perclos)
    st.progress(clip01(perclos), text=f"PERCLOS (eyes closed) {percent_text(perclos)}")
    col_blinks, col_yawns = st.columns(2)
    col_blinks.metric("Blinks", unit_text(None if fatigue is None else fatigue.blinks_per_min, "/min"))
    yawns = None if fatigue is None else finite_number(fatigue.yawns)
    col_yawns.metric("Yawns", DASH if yawns is None else f"{yawns:.0f}")


def render_suggestion(snapshot: Mapping[str, StateEntry], engine: Engine) -> dict[str, Any] | None:
    """The current suggestion with "Helpful" / "Not helpful" buttons feeding the agent; returns it."""
    st.subheader("Suggestion")
    agent, entry = _state(snapshot, "agent")
    if unavailable_note("agent", entry):
        return None
    suggestion = (agent or {}).get("suggestion")
    answered = st.session_state.get("answered_suggestion")
    if not suggestion:
        if answered:
            st.caption(f"Thanks: your answer to \"{answered['title']}\" was {answered['kind'].replace('_', ' ')}.")
        else:
            st.caption("No suggestion right now.")
        return None
    with st.container(border=True):
        st.markdown(f"**{suggestion['title']}**  \n{suggestion['message']}")
        helpful, not_helpful = st.columns(2)
        sid = suggestion["id"]
        kind = None
        if helpful.button("Helpful", key=f"helpful-{sid}", use_container_width=True):
            kind = "helpful"
        if not_helpful.button("Not helpful", key=f"not_helpful-{sid}", use_container_width=True):
            kind = "not_helpful"
        if kind is not None:
            if engine.feedback(sid, explicit_reward(kind)):
                st.session_state["answered_suggestion"] = {"title": suggestion["title"], "kind": kind}
                if suggestion["action"] == "breathing" and kind == "helpful":
                    st.session_state["pacer_started_at"] = time.time()
                st.toast(f"Thanks: recorded as {kind.replace('_', ' ')}.")
            return None
    if suggestion["action"] == "breathing" and "pacer_started_at" not in st.session_state:
        st.session_state["pacer_started_at"] = time.time()
    return suggestion


def render_pacer(started_at: float, *, duration_s: float = 64.0) -> bool:
    """Box-breathing pacer (4 s in, hold, out, hold); returns False once ``duration_s`` has passed."""
    elapsed = time.time() - started_at
    if elapsed > duration_s:
        return False
    phase = box_breathing_phase(elapsed)
    size = 40 + int(120 * phase.scale)
    st.markdown(
        f"""<div style="display:flex;align-items:center;gap:1.5rem;margin:.5rem 0 1rem 0">
  <div style="width:170px;height:170px;display:flex;align-items:center;justify-content:center">
    <div style="width:{size}px;height:{size}px;border-radius:18%;background:#4f9dde;opacity:.85;
                transition:all .3s linear"></div></div>
  <div><div style="font-size:1.6rem;font-weight:600">{phase.label.capitalize()}</div>
       <div>{math.ceil(phase.seconds_left)} s · breath {phase.cycle + 1}</div></div>
</div>""",
        unsafe_allow_html=True,
    )
    return True
