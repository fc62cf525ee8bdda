"""The clip report as a typed value: :class:`Report` mirrors the dict :func:`smartmirror.report.analyze_video`
returns, key for key (``Report.from_json(report).to_json() == report``); the keys and units are in
``docs/states.md``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from smartmirror.analyzer import JsonState
from smartmirror.emotion.state import EmotionSummary
from smartmirror.fatigue.state import FatigueSummary
from smartmirror.identity.state import IdentityState
from smartmirror.vitals.spo2 import SpO2Estimate
from smartmirror.vitals.state import HrvSummary, StressEstimate

__all__ = ["FacesSummary", "FacesWarning", "Quality", "Report", "Timings", "VideoInfo"]


@dataclass(frozen=True)
class Quality:
    """How well the face could be measured: ``face_detected_ratio`` and ``obstruction`` 0..1 (share of face frames
    covered or hard to see), ``liveness`` (None: undecided), ``frames``, ``fps`` (from the timestamps) and a
    ``message`` for the person (None when all is well)."""

    face_detected_ratio: float
    obstruction: float
    liveness: bool | None
    frames: int
    fps: float | None
    message: str | None


@dataclass(frozen=True)
class FacesWarning:
    """``code`` "several_faces" and a sentence saying how often, and that the largest face was measured."""

    code: str
    message: str


@dataclass(frozen=True)
class FacesSummary:
    """Most faces seen in one frame, frames with more than one, and the warning then (else None)."""

    max_faces_seen: int
    frames_with_several_faces: int
    warning: FacesWarning | None


@dataclass(frozen=True)
class VideoInfo:
    """The clip's file name and duration in seconds (frames / fps; None without a frame rate)."""

    name: str
    duration_s: float | None


@dataclass(frozen=True)
class Timings:
    """Seconds spent decoding, tracking the face, in each analyzer, and in all."""

    decode: float
    face: float
    vitals: float
    emotion: float
    fatigue: float
    identity: float
    total: float


@dataclass(frozen=True)
class Report(JsonState):
    """The whole report for one clip; None where a value could not be measured (or a section did not run)."""

    heart_rate_bpm: float | None
    heart_rate_confidence: float | None
    pulse_snr_db: float | None
    hrv: HrvSummary | None
    respiration_rate_bpm: float | None
    spo2_percent: float | None
    stress: StressEstimate | None
    emotion: EmotionSummary | None
    fatigue: FatigueSummary | None
    identity: IdentityState | None
    quality: Quality | None
    faces: FacesSummary
    spo2: SpO2Estimate | None
    pulse_method: str
    video: VideoInfo
    timings_s: Timings

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        """The report from its JSON form (validated: a missing or mistyped key raises ``pydantic.ValidationError``)."""
        return _ADAPTER.validate_python(data)


_ADAPTER = TypeAdapter(Report)
