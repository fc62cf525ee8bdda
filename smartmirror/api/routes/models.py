"""Pydantic models of every request and response body of the REST API (units in the field names).

The analyzers' live states are their frozen dataclasses (:class:`~smartmirror.vitals.state.VitalsState`,
:class:`~smartmirror.emotion.state.EmotionState`, :class:`~smartmirror.fatigue.state.FatigueState`), used as
field types: the OpenAPI schema lists their fields, and a response carries exactly their ``to_json()`` keys
(``docs/states.md``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from smartmirror.emotion.state import EmotionState
from smartmirror.fatigue.state import FatigueState
from smartmirror.modes import Mode
from smartmirror.vitals.methods import list_methods
from smartmirror.vitals.state import VitalsState

#: Most frames in one batch request (the session buffer's frame bound).
MAX_BATCH_FRAMES = 200


#: The pulse methods a live session accepts, as an enum in the schema (a generated name outside it is refused).
RealtimeMethod = Literal[tuple(list_methods(realtime_only=True))]  # type: ignore[valid-type]


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable reason, e.g. `no_face`, `session_expired`")
    message: str = Field(description="What went wrong, for people")


class ErrorResponse(BaseModel):
    """Every failure answers with this body."""

    error: ErrorBody


class SessionCreate(BaseModel):
    """Options of a new session (all optional)."""

    model_config = ConfigDict(extra="forbid")

    pulse_method: RealtimeMethod | None = Field(  # type: ignore[valid-type]
        default=None, description="rPPG method name (see GET /status); default: the server's"
    )
    fatigue_mode: Mode = Field(
        default="wellness", description="Fatigue analyzer mode"
    )


class SessionCreated(BaseModel):
    session_id: str
    message: str
    created_at: str = Field(description="ISO 8601 UTC")
    expires_after_idle_s: float


class SessionInfo(BaseModel):
    """What a session has seen so far."""

    session_id: str
    created_at: str = Field(description="ISO 8601 UTC")
    last_activity_at: str = Field(description="ISO 8601 UTC")
    idle_s: float
    expires_in_s: float = Field(description="Seconds until the session expires if it stays idle")
    frames_received: int
    frames_with_face: int
    buffered_frames: int = Field(description="Frames in the session's bounded window")
    buffered_seconds: float = Field(description="Source-clock span of the window")
    measured_fps: float | None = Field(description="Frame rate measured from the timestamps in the window")
    clock: Literal["client", "server"] | None = Field(description="Whose timestamps the session uses")
    pulse_method: str | None
    fatigue_mode: str
    heart_rate_bpm: float | None
    heart_rate_confidence: float | None


class SessionStatus(SessionInfo):
    """A session's details with the analyzers' latest states."""

    vitals: VitalsState | None = None
    emotion: EmotionState | None = None
    fatigue: FatigueState | None = None


class SessionList(BaseModel):
    sessions: list[SessionInfo]
    count: int
    max_sessions: int


class SessionDeleted(BaseModel):
    session_id: str
    message: str


class SessionReport(BaseModel):
    """The analyzers' summaries over the session so far (the clip report's keys, where measurable)."""

    model_config = ConfigDict(extra="allow")

    session_id: str
    frames_received: int
    heart_rate_bpm: float | None = None
    heart_rate_confidence: float | None = None
    emotion: dict[str, Any] | None = None
    fatigue: dict[str, Any] | None = None


class FrameIn(BaseModel):
    """One frame: a base64-encoded image (JPEG, PNG, WebP, BMP...; a `data:` URL prefix is accepted)."""

    model_config = ConfigDict(populate_by_name=True)

    image_data: str = Field(
        min_length=1,
        validation_alias=AliasChoices("image_data", "image"),
        description="Base64 of the encoded image file (max 4096x4096 pixels)",
    )
    timestamp_s: float | None = Field(
        default=None,
        ge=0,
        le=1e9,
        allow_inf_nan=False,
        validation_alias=AliasChoices("timestamp_s", "timestamp"),
        description="Capture time in seconds on the client's clock (strictly increasing within a session); "
        "heart rate needs true timing. Omit to use the server's arrival time.",
    )


class AnalyzeImageRequest(FrameIn):
    """Compatibility alias: one frame for a session (`session_id`), or a one-off analysis without heart rate (no id)."""

    session_id: str | None = Field(default=None, max_length=64)


class FrameBatch(BaseModel):
    """Ordered frames (oldest first)."""

    frames: list[FrameIn] = Field(
        min_length=1,
        description=f"At most {MAX_BATCH_FRAMES} frames (`SMARTMIRROR_SESSION_BUFFER_FRAMES`; more: 413 "
        "`batch_too_large`) and 200 megapixels together (`SMARTMIRROR_MAX_BATCH_MPX`)",
    )


class AnalyzeBatchRequest(FrameBatch):
    session_id: str = Field(max_length=64)


class FaceInfo(BaseModel):
    bbox: list[int] = Field(description="x, y, width, height in pixels")
    presence_score: float = Field(description="Face-detector confidence 0..1")
    num_faces: int = Field(description="Faces seen in the frame (the largest is measured)")
    yaw_deg: float
    pitch_deg: float
    roll_deg: float


class FrameResult(BaseModel):
    """The analysis of one frame and the session's latest states after it."""

    session_id: str | None
    frame_index: int | None = Field(description="Position of the frame in the session (0, 1, ...)")
    timestamp_s: float | None = Field(description="The frame's time on the session clock (seconds)")
    face_detected: bool
    face: FaceInfo | None
    heart_rate_bpm: float | None = Field(description="Current heart rate, once enough frames were seen")
    heart_rate_confidence: float | None = Field(description="0..1")
    vitals: VitalsState | None
    emotion: EmotionState | None
    fatigue: FatigueState | None
    faces_seen: int = Field(description="Faces seen in the frame; with several, the largest is measured")
    warning: ErrorBody | None = Field(
        default=None, description="`several_faces` when more than one face was seen (the largest is measured)"
    )
    error: ErrorBody | None = Field(default=None, description="Per-frame problem inside a batch (`no_face`)")
    processing_ms: float


class BatchResult(BaseModel):
    session_id: str
    frames: list[FrameResult]
    frames_processed: int
    frames_with_face: int
    frames_with_several_faces: int
    heart_rate_bpm: float | None
    heart_rate_confidence: float | None
    processing_ms: float


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    uptime_s: float
    time: str = Field(description="ISO 8601 UTC")


class SystemStatus(BaseModel):
    status: Literal["ok"]
    version: str
    uptime_s: float
    sessions_active: int
    max_sessions: int
    frames_processed: int
    video_analyses_running: int
    analyzers: dict[str, bool] = Field(description="Which analyzers could be built (installed and loaded)")
    pulse_methods: list[str]
    default_pulse_method: str | None
    limits: dict[str, Any]
    process_rss_mb: float | None
    cpu_count: int | None
