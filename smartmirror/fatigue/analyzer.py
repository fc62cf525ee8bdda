"""FatigueAnalyzer: eyes, blinks, PERCLOS, yawns, nods and head pose per person, on true timestamps.

Per frame: features (EAR, MAR, head pose; :mod:`~smartmirror.fatigue.features`) -> per-person baselines
(:mod:`~smartmirror.fatigue.calibration`) -> eye closure as a fraction of the person's own open eye -> events
(:mod:`~smartmirror.fatigue.events`, :mod:`~smartmirror.fatigue.mouth`, :mod:`~smartmirror.fatigue.head`) ->
drowsiness score (:mod:`~smartmirror.fatigue.model`).

Eye closure is ``c = (1 - EAR / baseline) / (1 - closed_ear_ratio)`` clipped to 0..1: 0 for the person's open eye,
1 when EAR has fallen to ``closed_ear_ratio`` (0.2) of it. FaceMesh's lid points never quite meet: on the
astronaut portrait with the eyes painted shut the EAR falls to about 0.17 of the open value.

Modes (``mode=``):

- ``"wellness"`` (default): 5 s calibration, 10 s smoothing of the score, no alerts.
- ``"driver"``: 5 s calibration, 3 s smoothing; ``alert`` is raised at once by a microsleep or a long closure
  (held ``alert_hold_s`` after the eyes reopen) regardless of any smoothing, by a distraction (head away from
  the usual pose for ``distraction_s``), or by a smoothed score of at least ``drowsy_alert``.
- ``"kiosk"``: 2 s calibration, 3 s smoothing, no alerts (short visits).

Without a face the state (:class:`~smartmirror.fatigue.state.FatigueState`) has ``face_present`` False, status
"no_face" and every number None (counts too: the report's summary keeps them), never a value carried over; only
a microsleep or closure alert already raised stays up for its hold time.

Kept whole (~450 lines): one per-frame state machine whose update, gap handling and summary share every field.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smartmirror.face import FaceObservation
from smartmirror.fatigue.calibration import Baseline
from smartmirror.fatigue.events import EventTimes, EyeClosureDetector, PerclosMeter
from smartmirror.fatigue.features import fatigue_features
from smartmirror.fatigue.head import HeadAwayTracker, NodDetector
from smartmirror.fatigue.mlp import FatigueMLP, load_mlp
from smartmirror.fatigue.model import FatigueMeasures, drowsiness_score
from smartmirror.fatigue.mouth import YawnDetector
from smartmirror.fatigue.state import DrowsinessEvidence, FatigueState
from smartmirror.frames import FramePacket

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModeSettings:
    """Defaults of one mode: calibration and smoothing seconds, and whether alerts are raised."""

    calibration_s: float
    smoothing_s: float
    alerts: bool


MODES: dict[str, ModeSettings] = {
    "wellness": ModeSettings(calibration_s=5.0, smoothing_s=10.0, alerts=False),
    "driver": ModeSettings(calibration_s=5.0, smoothing_s=3.0, alerts=True),
    "kiosk": ModeSettings(calibration_s=2.0, smoothing_s=3.0, alerts=False),
}

#: Yawn threshold on MAR: the person's resting MAR plus this rise, and never below the fixed mouth-open 0.6.
YAWN_MAR_RISE = 0.3
YAWN_MAR_MIN = 0.6
#: Window of the slow counts (yawns, nods), seconds.
SLOW_WINDOW_S = 300.0
#: Least face time (seconds) before a blink rate is reported.
MIN_RATE_WINDOW_S = 10.0
#: Frames further apart than this (seconds) break continuity (episodes end, intervals are not counted).
MAX_GAP_S = 1.0
#: The report keeps one sample per this many seconds for its medians (at most one hour's worth).
SUMMARY_SAMPLE_S = 0.2

#: Keys of the live state that hold numbers (all None without a face).
MEASUREMENT_KEYS = (
    "ear", "ear_left", "ear_right", "ear_baseline", "eye_closure", "mar", "mar_baseline", "yawn_threshold_mar",
    "head_roll_deg", "head_pitch_deg", "head_yaw_deg", "tilt_deg", "pitch_ratio", "perclos", "perclos_window_s",
    "blinks_per_min", "mean_blink_duration_s", "last_blink_duration_s", "closure_duration_s", "head_away_s",
    "drowsiness_probability", "drowsiness_score_rules", "blinks", "long_closures", "microsleeps", "yawns", "nods",
)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


class FatigueAnalyzer:
    """Fatigue and drowsiness of the person in front of the camera (the :class:`~smartmirror.analyzer.Analyzer`
    protocol).

    Parameters
    ----------
    mode : {"wellness", "driver", "kiosk"}
        Calibration, smoothing and alert defaults (module docstring).
    mlp_path : str or Path, optional
        A model trained with ``smartmirror train fatigue``; when given, ``drowsiness_probability`` is its
        smoothed per-frame P(drowsy) instead of the transparent scoring (which stays in
        ``drowsiness_score_rules``). Never loaded implicitly.
    calibration_s, smoothing_s : float, optional
        Override the mode's seconds of calibration and the time constant of the score's smoothing.
    perclos_window_s : float
        PERCLOS and blink-rate window, seconds (60 s, the usual PERCLOS minute).
    closed_ear_ratio : float
        EAR of a shut eye as a fraction of the open baseline (0 < ratio < 1).
    long_closure_s, microsleep_s : float
        Closure lengths (seconds) of a long closure (50 % closed) and a microsleep (80 % closed).
    yawn_min_s : float
        Shortest yawn, seconds.
    distraction_s : float
        Head away this long (seconds) is a distraction (driver mode alerts).
    alert_hold_s : float
        The ``microsleep`` flag and a closure alert stay up this long after the eyes reopen, seconds.
    drowsy_alert : float
        Driver mode: a smoothed drowsiness at or above this raises ``alert``.
    """

    name = "fatigue"

    def __init__(
        self,
        mode: str = "wellness",
        mlp_path: str | Path | None = None,
        calibration_s: float | None = None,
        smoothing_s: float | None = None,
        perclos_window_s: float = 60.0,
        closed_ear_ratio: float = 0.2,
        long_closure_s: float = 0.5,
        microsleep_s: float = 0.5,
        yawn_min_s: float = 1.5,
        distraction_s: float = 3.0,
        alert_hold_s: float = 3.0,
        drowsy_alert: float = 0.7,
    ):
        self.mode = mode
        self.mlp_path = mlp_path
        self.calibration_s = calibration_s
        self.smoothing_s = smoothing_s
        self.perclos_window_s = perclos_window_s
        self.closed_ear_ratio = closed_ear_ratio
        self.long_closure_s = long_closure_s
        self.microsleep_s = microsleep_s
        self.yawn_min_s = yawn_min_s
        self.distraction_s = distraction_s
        self.alert_hold_s = alert_hold_s
        self.drowsy_alert = drowsy_alert
        self.mlp_: FatigueMLP | None = None
        self._mlp_loaded_from: str | None = None
        self.reset()

    # ------------------------------------------------------------------------------------------------ set-up
    def reset(self) -> None:
        """Forget the person and the clip (validates the settings; loads the MLP once when a path is given).

        Raises
        ------
        ValueError
            An unknown mode or a setting out of range.
        smartmirror.fatigue.mlp.FatigueModelError
            ``mlp_path`` is not a usable model file.
        """
        if self.mode not in MODES:
            raise ValueError(f"Unknown fatigue mode {self.mode!r}; choose one of {sorted(MODES)}")
        if not 0.0 < self.closed_ear_ratio < 1.0:
            raise ValueError(f"closed_ear_ratio must be in (0, 1), got {self.closed_ear_ratio!r}")
        for name in ("perclos_window_s", "long_closure_s", "microsleep_s", "yawn_min_s", "distraction_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if not 0.0 < self.drowsy_alert <= 1.0:
            raise ValueError(f"drowsy_alert must be in (0, 1], got {self.drowsy_alert!r}")
        settings = MODES[self.mode]
        self.calibration_s_ = float(self.calibration_s if self.calibration_s is not None else settings.calibration_s)
        self.smoothing_s_ = float(self.smoothing_s if self.smoothing_s is not None else settings.smoothing_s)
        if self.calibration_s_ <= 0 or self.smoothing_s_ < 0:
            raise ValueError("calibration_s must be > 0 and smoothing_s >= 0 seconds")
        self.alerts_ = settings.alerts
        if self.mlp_path is None:
            self.mlp_ = None
            self._mlp_loaded_from = None
        elif self._mlp_loaded_from != str(self.mlp_path):
            self.mlp_ = load_mlp(self.mlp_path)
            self._mlp_loaded_from = str(self.mlp_path)

        cal = self.calibration_s_
        self.ear_baseline_ = Baseline(75.0, cal, window_s=120.0, relearn_tau_s=120.0, min_fraction=0.7)
        self.mar_baseline_ = Baseline(50.0, cal, window_s=120.0, relearn_tau_s=120.0)
        self.pitch_baseline_ = Baseline(50.0, cal, window_s=60.0, relearn_tau_s=60.0)
        self.yaw_baseline_ = Baseline(50.0, cal, window_s=60.0, relearn_tau_s=60.0)
        self.eyes_ = EyeClosureDetector(long_closure_s=self.long_closure_s, microsleep_s=self.microsleep_s)
        self.perclos_ = PerclosMeter(window_s=self.perclos_window_s, max_gap_s=MAX_GAP_S)
        self.slow_time_ = PerclosMeter(window_s=SLOW_WINDOW_S, max_gap_s=MAX_GAP_S)  # face time only
        self.yawns_ = YawnDetector(min_duration_s=self.yawn_min_s)
        self.nods_ = NodDetector()
        self.head_away_ = HeadAwayTracker(distraction_s=self.distraction_s)
        keep = max(self.perclos_window_s, SLOW_WINDOW_S)
        self.events_ = {kind: EventTimes(keep) for kind in ("blink", "long_closure", "microsleep", "yawn", "nod")}
        self.last_t_: float | None = None
        self.last_face_t_: float | None = None
        self.no_face_since_: float | None = None
        self.smoothed_: float | None = None
        self.alert_until_ = -math.inf
        self.alert_reason_: str | None = None
        self.microsleep_until_ = -math.inf
        self.samples_: deque[tuple[float, float, float, float]] = deque(maxlen=int(3600 / SUMMARY_SAMPLE_S))
        self._last_sample_t = -math.inf
        self.mlp_sum_ = 0.0
        self.mlp_count_ = 0
        self.state_: FatigueState | None = None

    # ------------------------------------------------------------------------------------------------ per frame
    def update(self, packet: FramePacket, face: FaceObservation | None) -> FatigueState:
        """Consume one frame (in source-clock order) and return the latest state.

        A frame whose time is not after the previous one is ignored (the previous state is returned).
        """
        t = float(packet.t)
        if not math.isfinite(t):
            raise ValueError(f"packet.t must be a finite number of seconds, got {packet.t!r}")
        if self.last_t_ is not None and t <= self.last_t_:
            log.debug("fatigue: ignoring a frame at t=%.3f s, not after %.3f s", t, self.last_t_)
            return self.state_ if self.state_ is not None else self._no_face_state(t)
        self.last_t_ = t
        if face is None:
            return self._lose_face(t)

        continuous = (
            self.last_face_t_ is not None and self.no_face_since_ is None and t - self.last_face_t_ <= MAX_GAP_S
        )
        dt = (t - self.last_face_t_) if continuous else 0.0
        if not continuous and self.last_face_t_ is not None and self.no_face_since_ is None:
            self._interrupt(t)  # a gap in the stream
        self.last_face_t_ = t
        self.no_face_since_ = None

        features = fatigue_features(face)
        ear_base = self.ear_baseline_.update(t, features.ear, dt)
        closure = min(1.0, max(0.0, (1.0 - features.ear / max(ear_base, 1e-6)) / (1.0 - self.closed_ear_ratio)))
        for event in self.eyes_.update(t, closure, continuous):
            duration = self.eyes_.last_blink_duration_s if event == "blink" else 0.0
            self.events_[event].add(t, duration or 0.0)
        self.perclos_.update(t, closure, continuous)
        self.slow_time_.update(t, 0.0, continuous)

        mar_base = self.mar_baseline_.update(t, features.mar, dt)
        yawn_threshold = max(YAWN_MAR_MIN, mar_base + YAWN_MAR_RISE)
        if self.yawns_.update(t, features.mar, mar_base, yawn_threshold, continuous):
            self.events_["yawn"].add(t, self.yawns_.last_yawn_duration_s or 0.0)

        usual_pitch = self.pitch_baseline_.update(t, features.head_pitch_deg, dt)
        usual_yaw = self.yaw_baseline_.update(t, features.head_yaw_deg, dt)
        if self.nods_.update(t, features.head_pitch_deg, usual_pitch, continuous):
            self.events_["nod"].add(t)
        self.head_away_.update(t, features.head_yaw_deg, features.head_pitch_deg, usual_yaw, usual_pitch, continuous)

        # --- drowsiness
        eye_window = self.perclos_.observed_s()
        blink_durations = self.events_["blink"].values(t, self.perclos_window_s)
        blinks = len(blink_durations)
        measures = FatigueMeasures(
            perclos=self.perclos_.perclos(),
            blinks_per_min=(blinks / (eye_window / 60.0)) if eye_window >= MIN_RATE_WINDOW_S else None,
            mean_blink_duration_s=(sum(blink_durations) / blinks) if blinks else None,
            blink_count=blinks,
            microsleeps=self.events_["microsleep"].count(t, self.perclos_window_s),
            long_closures=self.events_["long_closure"].count(t, self.perclos_window_s),
            eye_window_s=eye_window,
            yawns=self.events_["yawn"].count(t, SLOW_WINDOW_S),
            nods=self.events_["nod"].count(t, SLOW_WINDOW_S),
            slow_window_s=self.slow_time_.observed_s(),
        )
        score = drowsiness_score(measures)
        if self.mlp_ is not None:
            raw = float(self.mlp_.predict_drowsy(features.mlp_vector())[0])
            self.mlp_sum_ += raw
            self.mlp_count_ += 1
        else:
            raw = score.probability
        if self.smoothed_ is None or self.smoothing_s_ == 0 or not continuous:
            self.smoothed_ = raw
        else:
            self.smoothed_ += (1.0 - math.exp(-dt / self.smoothing_s_)) * (raw - self.smoothed_)

        # --- flags and alerts
        eyes = self.eyes_
        if eyes.microsleep_now:
            self.microsleep_until_ = t + self.alert_hold_s
        microsleep = eyes.microsleep_now or t <= self.microsleep_until_
        reason = None
        if self.alerts_:
            if eyes.microsleep_now or eyes.long_closure_now:
                self.alert_until_ = t + self.alert_hold_s
                self.alert_reason_ = "microsleep" if eyes.microsleep_now else "long_closure"
            if t <= self.alert_until_:
                reason = self.alert_reason_
            elif self.head_away_.distracted:
                reason = "distraction"
            elif self.smoothed_ >= self.drowsy_alert:
                reason = "drowsy"

        if t - self._last_sample_t >= SUMMARY_SAMPLE_S:
            self._last_sample_t = t
            self.samples_.append((features.ear, features.mar, features.head_roll_deg, features.head_pitch_deg))

        calibrated = self.ear_baseline_.calibrated
        self.state_ = FatigueState(
            t=t,
            face_present=True,
            status="ok" if calibrated else "calibrating",
            mode=self.mode,
            calibrated=calibrated,
            ear=_round(features.ear),
            ear_left=_round(features.ear_left),
            ear_right=_round(features.ear_right),
            ear_baseline=_round(ear_base),
            eye_closure=_round(closure, 3),
            eyes_closed=eyes.closed_now,
            closure_duration_s=_round(eyes.current_closure_s, 3),
            mar=_round(features.mar),
            mar_baseline=_round(mar_base),
            yawn_threshold_mar=_round(yawn_threshold),
            mouth_open=self.yawns_.mouth_open_now,
            yawning=self.yawns_.yawning_now,
            talking=self.yawns_.talking(t),
            head_roll_deg=_round(features.head_roll_deg, 2),
            head_pitch_deg=_round(features.head_pitch_deg, 2),
            head_yaw_deg=_round(features.head_yaw_deg, 2),
            tilt_deg=_round(features.tilt_deg, 2),
            pitch_ratio=_round(features.pitch_ratio),
            head_down=self.nods_.head_down_now,
            head_away=self.head_away_.away_now,
            head_away_s=_round(self.head_away_.current_away_s, 3),
            distracted=self.head_away_.distracted,
            blinks=self.events_["blink"].total,
            blinks_per_min=_round(measures.blinks_per_min, 2),
            mean_blink_duration_s=_round(measures.mean_blink_duration_s, 3),
            last_blink_duration_s=_round(eyes.last_blink_duration_s, 3),
            perclos=_round(measures.perclos),
            perclos_window_s=_round(eye_window, 2),
            long_closure=eyes.long_closure_now,
            long_closures=self.events_["long_closure"].total,
            microsleep=microsleep,
            microsleeps=self.events_["microsleep"].total,
            yawns=self.events_["yawn"].total,
            nods=self.events_["nod"].total,
            drowsiness_probability=_round(self.smoothed_),
            drowsiness_score_rules=_round(score.probability),
            drowsiness_evidence=DrowsinessEvidence(**score.evidence),
            drowsiness_method="mlp" if self.mlp_ is not None else "rules",
            alert=reason is not None,
            alert_reason=reason,
        )
        return self.state_

    def _interrupt(self, t: float) -> None:
        """End every episode in progress (a gap or a lost face)."""
        self.eyes_.interrupt()
        if self.yawns_.interrupt():
            self.events_["yawn"].add(t, self.yawns_.last_yawn_duration_s or 0.0)
        self.nods_.interrupt()
        self.head_away_.interrupt()

    def _lose_face(self, t: float) -> FatigueState:
        if self.last_face_t_ is not None and self.no_face_since_ is None:
            self._interrupt(t)
            self.no_face_since_ = t
        self.smoothed_ = None
        return self._no_face_state(t)

    def _no_face_state(self, t: float) -> FatigueState:
        alert = self.alerts_ and t <= self.alert_until_
        self.state_ = FatigueState.without_face(
            t,
            mode=self.mode,
            calibrated=self.ear_baseline_.calibrated,
            # a microsleep or closure alert in progress outlives the face (a slumping head often loses it)
            microsleep=t <= self.microsleep_until_,
            drowsiness_method="mlp" if self.mlp_ is not None else "rules",
            alert=alert,
            alert_reason=self.alert_reason_ if alert else None,
        )
        return self.state_

    # ------------------------------------------------------------------------------------------------ report
    def summary(self) -> dict[str, Any] | None:
        """The report's fatigue section over everything seen since ``reset`` (None when no face was seen).

        Keys: drowsiness_probability, perclos, blinks_per_min, yawns, ear, mar, head_roll_deg, head_pitch_deg
        (``docs/states.md``), plus blinks, mean_blink_duration_s, long_closures, microsleeps, nods, distractions,
        head_away_s, face_seconds, calibrated and drowsiness_method. Medians cover at most the last hour.
        """
        if not self.samples_:
            return None
        samples = np.array(self.samples_, dtype=np.float64)
        ear, mar, roll, pitch = np.median(samples, axis=0)
        face_s = self.perclos_.total_s
        blinks = self.events_["blink"]
        measures = FatigueMeasures(
            perclos=self.perclos_.total_perclos(),
            blinks_per_min=(blinks.total / (face_s / 60.0)) if face_s >= MIN_RATE_WINDOW_S else None,
            mean_blink_duration_s=(blinks.total_value / blinks.total) if blinks.total else None,
            blink_count=blinks.total,
            microsleeps=self.events_["microsleep"].total,
            long_closures=self.events_["long_closure"].total,
            eye_window_s=face_s,
            yawns=self.events_["yawn"].total + int(self.yawns_.pending_yawn()),  # one open as the clip ends
            nods=self.events_["nod"].total,
            slow_window_s=face_s,
        )
        if self.mlp_ is not None and self.mlp_count_:
            probability = self.mlp_sum_ / self.mlp_count_
        else:
            probability = drowsiness_score(measures).probability
        return {
            "drowsiness_probability": _round(probability),
            "perclos": _round(measures.perclos),
            "blinks_per_min": _round(measures.blinks_per_min, 2),
            "yawns": measures.yawns,
            "ear": _round(ear),
            "mar": _round(mar),
            "head_roll_deg": _round(roll, 2),
            "head_pitch_deg": _round(pitch, 2),
            "blinks": blinks.total,
            "mean_blink_duration_s": _round(measures.mean_blink_duration_s, 3),
            "long_closures": measures.long_closures,
            "microsleeps": measures.microsleeps,
            "nods": measures.nods,
            "distractions": self.head_away_.distractions,
            "head_away_s": _round(self.head_away_.total_away_s, 2),
            "face_seconds": _round(face_s, 2),
            "calibrated": self.ear_baseline_.calibrated,
            "drowsiness_method": "mlp" if self.mlp_ is not None else "rules",
        }
