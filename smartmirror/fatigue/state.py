"""The live fatigue state (what :meth:`smartmirror.fatigue.analyzer.FatigueAnalyzer.update` returns); see
``docs/states.md`` for the JSON form."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from smartmirror.analyzer import JsonState

__all__ = ["DrowsinessEvidence", "FatigueState", "FatigueSummary"]


@dataclass(frozen=True)
class DrowsinessEvidence:
    """Each sign's evidence 0..1 in the transparent drowsiness score (terms of
    :data:`smartmirror.fatigue.model.SCORE_TERMS`)."""

    perclos: float
    microsleeps: float
    long_closures: float
    blink_duration: float
    blink_rate: float
    yawns: float
    nods: float


@dataclass(frozen=True)
class FatigueState(JsonState):
    """Eyes, mouth, head and drowsiness after the latest frame.

    Without a face every measurement (the fields typed ``| None`` below, counts included) and every per-frame
    flag is None, never a value carried over (:meth:`without_face`); only a microsleep or closure alert already
    raised stays up for its hold time.

    Attributes
    ----------
    t : float
        Source time of the frame, seconds.
    face_present : bool
    status : str
        "ok", "calibrating" (the person's baselines are being learned) or "no_face".
    mode : str
        "wellness", "driver" or "kiosk".
    calibrated : bool
        The open-eye baseline is learned.
    ear, ear_left, ear_right, ear_baseline : float or None
        Eye aspect ratio (both eyes, each eye) and the person's open-eye baseline.
    eye_closure : float or None
        0 for the person's open eye .. 1 for closed.
    eyes_closed : bool or None
    closure_duration_s : float or None
        Seconds the current closure has lasted (0 with open eyes).
    mar, mar_baseline, yawn_threshold_mar : float or None
        Mouth aspect ratio, the person's resting value and the yawn threshold.
    mouth_open, yawning, talking : bool or None
    head_roll_deg, head_pitch_deg, head_yaw_deg, tilt_deg : float or None
        Head pose, degrees.
    pitch_ratio : float or None
        Nose-tip-to-chin over outer-eye-corner distance (falls as the head pitches).
    head_down, head_away : bool or None
    head_away_s : float or None
        Seconds the head has been away from its usual pose.
    distracted : bool or None
        Head away for at least the distraction time.
    blinks : int or None
        Blinks since the start.
    blinks_per_min : float or None
        Over the PERCLOS window (None before 10 s of face time).
    mean_blink_duration_s, last_blink_duration_s : float or None
        Seconds.
    perclos : float or None
        Share 0..1 of the window with the eyes at least 80 % closed.
    perclos_window_s : float or None
        Seconds of face time the PERCLOS covers.
    long_closure : bool or None
        A closure past the long-closure time is in progress.
    long_closures : int or None
        Since the start.
    microsleep : bool
        A microsleep is in progress or ended less than the hold time ago.
    microsleeps, yawns, nods : int or None
        Since the start.
    drowsiness_probability : float or None
        Smoothed drowsiness 0..1 (the MLP's when one is loaded, else the transparent score).
    drowsiness_score_rules : float or None
        The transparent score 0..1 of this frame.
    drowsiness_evidence : DrowsinessEvidence or None
        Each term's share in the transparent score.
    drowsiness_method : str
        "rules" or "mlp".
    alert : bool
        Driver mode: the driver should be warned now.
    alert_reason : str or None
        "microsleep", "long_closure", "distraction" or "drowsy".
    """

    t: float
    face_present: bool
    status: str
    mode: str
    calibrated: bool
    ear: float | None
    ear_left: float | None
    ear_right: float | None
    ear_baseline: float | None
    eye_closure: float | None
    eyes_closed: bool | None
    closure_duration_s: float | None
    mar: float | None
    mar_baseline: float | None
    yawn_threshold_mar: float | None
    mouth_open: bool | None
    yawning: bool | None
    talking: bool | None
    head_roll_deg: float | None
    head_pitch_deg: float | None
    head_yaw_deg: float | None
    tilt_deg: float | None
    pitch_ratio: float | None
    head_down: bool | None
    head_away: bool | None
    head_away_s: float | None
    distracted: bool | None
    blinks: int | None
    blinks_per_min: float | None
    mean_blink_duration_s: float | None
    last_blink_duration_s: float | None
    perclos: float | None
    perclos_window_s: float | None
    long_closure: bool | None
    long_closures: int | None
    microsleep: bool
    microsleeps: int | None
    yawns: int | None
    nods: int | None
    drowsiness_probability: float | None
    drowsiness_score_rules: float | None
    drowsiness_evidence: DrowsinessEvidence | None
    drowsiness_method: str
    alert: bool
    alert_reason: str | None

    @classmethod
    def without_face(cls, t: float, *, mode: str, calibrated: bool, microsleep: bool, drowsiness_method: str,
                     alert: bool, alert_reason: str | None) -> FatigueState:
        """The state of a frame without a face: these fields as given, every other one None."""
        given = {"t": t, "face_present": False, "status": "no_face", "mode": mode, "calibrated": calibrated,
                 "microsleep": microsleep, "drowsiness_method": drowsiness_method, "alert": alert,
                 "alert_reason": alert_reason}
        return cls(**{f.name: given.get(f.name) for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class FatigueSummary:
    """The clip report's ``fatigue`` section (:meth:`smartmirror.fatigue.analyzer.FatigueAnalyzer.summary`).

    Over every face frame since the start: ``perclos`` 0..1, ``blinks_per_min`` (None under 10 s of face time),
    counts of ``blinks``, ``yawns``, ``long_closures``, ``microsleeps``, ``nods`` and ``distractions``; medians
    (at most the last hour) of ``ear``, ``mar``, ``head_roll_deg`` and ``head_pitch_deg``; ``head_away_s`` and
    ``face_seconds`` in seconds; ``drowsiness_probability`` 0..1 by ``drowsiness_method`` ("rules" or "mlp").
    """

    drowsiness_probability: float | None
    perclos: float | None
    blinks_per_min: float | None
    yawns: int
    ear: float | None
    mar: float | None
    head_roll_deg: float | None
    head_pitch_deg: float | None
    blinks: int
    mean_blink_duration_s: float | None
    long_closures: int
    microsleeps: int
    nods: int
    distractions: int
    head_away_s: float | None
    face_seconds: float | None
    calibrated: bool
    drowsiness_method: str
