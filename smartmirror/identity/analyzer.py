"""Age and gender over a clip or the live stream, with the uncertainty shown (opt-in: see optin.py).

Good frames only: one face, found with confidence, turned less than ``max_yaw_deg`` / ``max_pitch_deg``, whole in
the frame and large enough (eye corners ``min_eye_span_px`` apart). At most one reading every
``sample_interval_s`` seconds of source time is taken (neighbouring frames are near copies).

The summary:

- ``age_years``: median of the per-frame estimates (each the expected value of the 81-class age output);
  ``age_spread_years``: their interquartile range (None below 3 frames). The model's own class probabilities
  are not calibrated (0.86 on one year for a face the same model, aligned by dlib, puts 3 years older), so no
  confidence is derived from them.
- ``gender``: "female" or "male" from the mean probability over frames, "uncertain" when the winning side's
  mean probability (``gender_confidence``) is below ``uncertain_below`` (0.8). The confidence always comes with
  the label: gender models are reported to be biased towards "male" (women in poor light, with makeup or with
  traditionally masculine features were misread).
- ``frames_used``, ``frames_with_face``, ``frames_seen``; ``reason``: why fields are null (or a caveat), else None.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

import numpy as np

from smartmirror.face import FaceObservation
from smartmirror.frames import FramePacket
from smartmirror.identity.align import dlib5_points
from smartmirror.identity.model import AgeGenderModel, default_model
from smartmirror.identity.state import IdentityState

#: Human-readable names of the reasons a frame is not used.
REJECTION_TEXT = {
    "no_face": "no face",
    "several_faces": "more than one face",
    "low_face_confidence": "face detector unsure (covered or in poor light)",
    "head_turned": "head turned away",
    "face_at_edge": "face cut off by the frame edge",
    "face_too_small": "face too small",
}


@dataclass(frozen=True)
class IdentityReading:
    """One good frame's reading.

    Attributes
    ----------
    t : float
        Source time of the frame in seconds.
    age_years : float
        Expected age in years.
    female_probability : float
        Probability 0..1 of "female".
    """

    t: float
    age_years: float
    female_probability: float


def frame_problem(
    face: FaceObservation | None,
    *,
    min_presence: float,
    max_yaw_deg: float,
    max_pitch_deg: float,
    min_eye_span_px: float,
) -> str | None:
    """Why a frame is not good enough for age and gender (a key of ``REJECTION_TEXT``), or None when it is."""
    if face is None:
        return "no_face"
    if face.num_faces > 1:
        return "several_faces"
    if face.presence_score < min_presence:
        return "low_face_confidence"
    if abs(face.yaw_deg) > max_yaw_deg or abs(face.pitch_deg) > max_pitch_deg:
        return "head_turned"
    height, width = face.image_size
    xy = face.landmarks_px[:, :2]
    if xy.min() < 0 or (xy[:, 0] >= width).any() or (xy[:, 1] >= height).any():
        return "face_at_edge"
    points = dlib5_points(face)
    if float(np.linalg.norm(points[0] - points[2])) < min_eye_span_px:
        return "face_too_small"
    return None


def aggregate_gender(female_probabilities: np.ndarray, *, uncertain_below: float = 0.8) -> tuple[str, float, float]:
    """Label, confidence and mean female probability from per-frame female probabilities (0..1).

    The label is the side of the mean probability ("female" at >= 0.5), or "uncertain" when the confidence (the
    winning side's mean probability, 0.5..1) is below ``uncertain_below``.
    """
    female_probabilities = np.asarray(female_probabilities, dtype=np.float64)
    if female_probabilities.size == 0 or not np.all((female_probabilities >= 0) & (female_probabilities <= 1)):
        raise ValueError("need at least one probability, each in [0, 1]")
    female = float(np.mean(female_probabilities))
    label, confidence = ("female", female) if female >= 0.5 else ("male", 1.0 - female)
    if confidence < uncertain_below:
        label = "uncertain"
    return label, confidence, female


def aggregate_age(ages_years: np.ndarray) -> tuple[float, float | None]:
    """Median of per-frame ages and their interquartile range (None below 3 frames), in years."""
    ages_years = np.asarray(ages_years, dtype=np.float64)
    if ages_years.ndim != 1 or len(ages_years) == 0:
        raise ValueError("need a non-empty 1-D array of ages")
    median = float(np.median(ages_years))
    spread = float(np.subtract(*np.percentile(ages_years, [75, 25]))) if len(ages_years) >= 3 else None
    return median, spread


class IdentityAnalyzer:
    """Age and gender from good frames (Analyzer protocol; off unless the user opts in, see optin.py).

    Parameters
    ----------
    model : AgeGenderModel or None
        The networks; None: the shared bundled model, loaded on the first good frame.
    sample_interval_s : float
        Least source time between two readings, in seconds.
    uncertain_below : float
        Gender confidence (0.5..1) under which the label is "uncertain".
    min_presence : float
        Least face-detector confidence (0..1).
    max_yaw_deg, max_pitch_deg : float
        Largest head turn and tilt accepted, in degrees.
    min_eye_span_px : float
        Least distance between the outer eye corners, in pixels.
    max_readings : int
        Readings kept (the oldest are dropped beyond it, in a long live session).
    """

    name = "identity"

    def __init__(
        self,
        model: AgeGenderModel | None = None,
        sample_interval_s: float = 0.5,
        uncertain_below: float = 0.8,
        min_presence: float = 0.5,
        max_yaw_deg: float = 30.0,
        max_pitch_deg: float = 25.0,
        min_eye_span_px: float = 24.0,
        max_readings: int = 600,
    ):
        self.model = model
        self.sample_interval_s = sample_interval_s
        self.uncertain_below = uncertain_below
        self.min_presence = min_presence
        self.max_yaw_deg = max_yaw_deg
        self.max_pitch_deg = max_pitch_deg
        self.min_eye_span_px = min_eye_span_px
        self.max_readings = max_readings
        self.reset()

    def reset(self) -> None:
        """Forget all readings (new person or clip)."""
        if not 0.5 <= self.uncertain_below <= 1.0:
            raise ValueError(f"uncertain_below must be in [0.5, 1], got {self.uncertain_below!r}")
        if self.sample_interval_s < 0 or self.max_readings < 1:
            raise ValueError("sample_interval_s must be >= 0 and max_readings >= 1")
        self.readings_: deque[IdentityReading] = deque(maxlen=int(self.max_readings))
        self.rejections_: Counter[str] = Counter()
        self.frames_seen_ = 0
        self.frames_with_face_ = 0
        self.last_reading_t_: float | None = None

    def update(self, packet: FramePacket, face: FaceObservation | None) -> IdentityState:
        """Take a reading from this frame when it is good and due; returns the running state."""
        self.frames_seen_ += 1
        if face is not None:
            self.frames_with_face_ += 1
        problem = frame_problem(
            face,
            min_presence=self.min_presence,
            max_yaw_deg=self.max_yaw_deg,
            max_pitch_deg=self.max_pitch_deg,
            min_eye_span_px=self.min_eye_span_px,
        )
        if problem is not None:
            self.rejections_[problem] += 1
        elif self.last_reading_t_ is None or not 0 <= packet.t - self.last_reading_t_ < self.sample_interval_s:
            if self.model is None:
                self.model = default_model()
            seen = self.model.predict(packet.image, dlib5_points(face))
            self.readings_.append(IdentityReading(packet.t, seen.age_years, seen.female_probability))
            self.last_reading_t_ = packet.t
        return self.state()

    def summary(self) -> dict:
        """The report's identity section (see the module docstring); null fields with a ``reason`` when no
        frame was good enough."""
        return self.state().to_json()

    def state(self) -> IdentityState:
        """Age and gender over the readings so far (the summary's typed form)."""
        counts = {
            "frames_used": len(self.readings_),
            "frames_with_face": self.frames_with_face_,
            "frames_seen": self.frames_seen_,
        }
        if not self.readings_:
            return IdentityState(
                age_years=None,
                age_spread_years=None,
                gender=None,
                gender_confidence=None,
                female_probability=None,
                **counts,
                reason=self._no_reading_reason(),
            )
        readings = list(self.readings_)
        age, spread = aggregate_age(np.array([r.age_years for r in readings]))
        label, confidence, female = aggregate_gender(
            np.array([r.female_probability for r in readings]), uncertain_below=self.uncertain_below
        )
        reason = None
        if label == "uncertain":
            reason = f"gender uncertain: confidence {confidence:.2f} is below {self.uncertain_below:.2f}"
        return IdentityState(
            age_years=round(age, 1),
            age_spread_years=None if spread is None else round(spread, 1),
            gender=label,
            gender_confidence=round(confidence, 3),
            female_probability=round(female, 3),
            **counts,
            reason=reason,
        )

    def _no_reading_reason(self) -> str:
        if self.frames_seen_ == 0:
            return "no frames analysed yet"
        if self.frames_with_face_ == 0:
            return f"no face found in any of {self.frames_seen_} frames"
        causes = ", ".join(
            f"{REJECTION_TEXT[key]}: {count}" for key, count in self.rejections_.most_common() if key != "no_face"
        )
        return f"a face was found in {self.frames_with_face_} frames but none was usable ({causes})"
