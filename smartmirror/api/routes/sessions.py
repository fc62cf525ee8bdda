"""Sessions and their frames: the REST shape (``/sessions...``) and compatibility aliases (``/create-session``, ...).

Endpoints are plain ``def``: FastAPI runs them in its thread pool, which suits MediaPipe and numpy work.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request

from smartmirror.analyzer import json_value
from smartmirror.api.routes.errors import ApiError, check_pulse_method, error_responses
from smartmirror.api.routes.media import checked_image_size, decode_base64, decode_image, decode_image_base64
from smartmirror.api.routes.middleware import DEADLINE_KEY
from smartmirror.api.routes.models import (
    AnalyzeBatchRequest,
    AnalyzeImageRequest,
    BatchResult,
    FaceInfo,
    FrameBatch,
    FrameIn,
    FrameResult,
    SessionCreate,
    SessionCreated,
    SessionDeleted,
    SessionInfo,
    SessionList,
    SessionReport,
    SessionStatus,
)
from smartmirror.api.routes.state import ApiState, api_state
from smartmirror.api.sessions import FrameOrderError, FrameOutcome, Session, session_specs
from smartmirror.vitals.methods import get_method

router = APIRouter(tags=["sessions"])
alias_router = APIRouter(tags=["compatibility aliases"])
State = Annotated[ApiState, Depends(api_state)]
SessionId = Annotated[str, Path(max_length=64, description="The id POST /sessions answered")]

SESSION_ERRORS = error_responses(401, 404, 410)
FRAME_ERRORS = error_responses(400, 401, 404, 409, 410, 413, 415, 422, 504)


# -- helpers -------------------------------------------------------------------------------------------------
def live_default_method(configured: str | None) -> str | None:
    """A live session's pulse method when the client names none: SMARTMIRROR_PULSE_METHOD when it is fast enough
    for live frames, else the vitals default (None). A clip-report-only method there (``me-rlap``) would re-run
    its network over the session's whole pool every second; it still applies to the clip endpoints."""
    if configured is None or get_method(configured).realtime:
        return configured
    return None


def _create(state: ApiState, options: SessionCreate | None) -> SessionCreated:
    options = options or SessionCreate()
    check_pulse_method(options.pulse_method, live=True)
    method = options.pulse_method or live_default_method(state.settings.pulse_method)
    session = state.store.create(pulse_method=method, fatigue_mode=options.fatigue_mode)
    info = session.info(state.settings.session_expiry_s)
    return SessionCreated(session_id=session.session_id, message="Session created successfully",
                          created_at=info["created_at"], expires_after_idle_s=state.settings.session_expiry_s)


def _status(state: ApiState, session_id: str) -> SessionStatus:
    session = state.store.get(session_id)
    latest = session.latest
    return SessionStatus(**session.info(state.settings.session_expiry_s),
                         vitals=latest.get("vitals"), emotion=latest.get("emotion"), fatigue=latest.get("fatigue"))


def _delete(state: ApiState, session_id: str) -> SessionDeleted:
    state.store.delete(session_id)
    return SessionDeleted(session_id=session_id, message="Session deleted")


def _lock_wait_s(state: ApiState) -> float:
    return state.settings.request_timeout_s / 2


def _face_info(outcome: FrameOutcome) -> FaceInfo | None:
    face = outcome.face
    if face is None:
        return None
    return FaceInfo(bbox=[int(v) for v in face.bbox], presence_score=round(float(face.presence_score), 4),
                    num_faces=int(face.num_faces), yaw_deg=round(float(face.yaw_deg), 2),
                    pitch_deg=round(float(face.pitch_deg), 2), roll_deg=round(float(face.roll_deg), 2))


def _frame_result(session_id: str | None, outcome: FrameOutcome, seconds: float) -> FrameResult:
    states = outcome.states
    vitals = states.get("vitals") or {}
    error = None
    if outcome.error_code:
        error = {"code": outcome.error_code, "message": outcome.error_message}
    return FrameResult(
        session_id=session_id,
        frame_index=outcome.frame_index if session_id else None,
        timestamp_s=round(outcome.t, 6) if session_id else None,
        face_detected=outcome.face is not None,
        face=_face_info(outcome),
        faces_seen=outcome.num_faces,
        warning=outcome.warning,
        heart_rate_bpm=vitals.get("heart_rate_bpm"),
        heart_rate_confidence=vitals.get("heart_rate_confidence"),
        vitals=states.get("vitals"),
        emotion=states.get("emotion"),
        fatigue=states.get("fatigue"),
        error=error,
        processing_ms=round(seconds * 1000, 2),
    )


def _record(state: ApiState, outcome: FrameOutcome) -> None:
    state.metrics.observe_frame(outcome.error_code or "face", outcome.timings_s)


def _analyze_frame(state: ApiState, session_id: str, frame: FrameIn) -> FrameResult:
    start = time.perf_counter()
    state.store.get(session_id)  # an unknown or expired session answers 404/410 before the image is decoded
    image = decode_image_base64(frame.image_data, max_side_px=state.settings.max_image_side_px)
    with state.store.use(session_id, wait_s=_lock_wait_s(state)) as session:
        outcome = session.process(image, frame.timestamp_s)
    del image
    _record(state, outcome)
    if outcome.error_code:
        raise ApiError(422, outcome.error_code,
                       f"{outcome.error_message}; frame {outcome.frame_index} was recorded as a gap")
    return _frame_result(session_id, outcome, time.perf_counter() - start)


def _analyze_photo(state: ApiState, frame: FrameIn) -> FrameResult:
    """One image without a session: face, head pose, emotion and eye/mouth state (no heart rate)."""
    start = time.perf_counter()
    image = decode_image_base64(frame.image_data, max_side_px=state.settings.max_image_side_px)
    specs = [spec for spec in session_specs() if spec.name != "vitals"]
    session = Session("photo", tracker=state.photo_tracker, specs=specs, buffer_frames=1,
                      buffer_seconds=1.0, pulse_method=None, fatigue_mode="wellness")
    with session.lock:
        outcome = session.process(image, frame.timestamp_s)
    _record(state, outcome)
    if outcome.error_code:
        raise ApiError(422, outcome.error_code, outcome.error_message)
    return _frame_result(None, outcome, time.perf_counter() - start)


def _check_batch_times(session: Session, frames: list[FrameIn]) -> None:
    """Refuse a batch whose timestamps are mixed or out of order before any frame is processed."""
    given = [f.timestamp_s is not None for f in frames]
    if any(given) and not all(given):
        raise FrameOrderError("Give timestamp_s on every frame of a batch or on none", code="clock_mismatch")
    if all(given):
        times = [f.timestamp_s for f in frames]
        for i in range(1, len(times)):
            if times[i] <= times[i - 1]:
                raise FrameOrderError(f"frames[{i}].timestamp_s {times[i]} is not after frames[{i - 1}]'s "
                                      f"{times[i - 1]}; send frames oldest first")
    session.frame_time(frames[0].timestamp_s)  # against the session's clock and last frame


def _checked_batch(state: ApiState, batch: FrameBatch) -> list[bytes]:
    """Every frame's bytes, refused as a whole (before any pixel is decoded) when a frame's header is bad or
    too large, or when the frames' pixels together pass ``max_batch_megapixels``."""
    limits = state.settings
    if len(batch.frames) > limits.buffer_frames:
        raise ApiError(413, "batch_too_large",
                       f"{len(batch.frames)} frames; a batch holds at most {limits.buffer_frames}")
    raws, pixels = [], 0
    for i, frame in enumerate(batch.frames):
        try:
            raw = decode_base64(frame.image_data)
            width, height = checked_image_size(raw, max_side_px=limits.max_image_side_px)
        except ApiError as exc:
            raise ApiError(exc.status_code, exc.code, f"frames[{i}]: {exc.message}") from None
        pixels += width * height
        raws.append(raw)
    if pixels > limits.max_batch_megapixels * 1e6:
        raise ApiError(413, "batch_too_large",
                       f"The batch's frames hold {pixels / 1e6:.1f} megapixels together; the limit is "
                       f"{limits.max_batch_megapixels:g} (send smaller or fewer frames)")
    return raws


def _analyze_batch(state: ApiState, request: Request, session_id: str, batch: FrameBatch) -> BatchResult:
    start = time.perf_counter()
    state.store.get(session_id)  # 404/410 before any image work
    raws = _checked_batch(state, batch)
    deadline = request.scope.get(DEADLINE_KEY, float("inf")) - 0.5
    results: list[FrameResult] = []
    with state.store.use(session_id, wait_s=_lock_wait_s(state)) as session:
        _check_batch_times(session, batch.frames)
        for i, (frame, raw) in enumerate(zip(batch.frames, raws, strict=True)):
            if time.monotonic() > deadline:
                raise ApiError(504, "timeout", f"Only {i} of {len(raws)} frames were analysed within the time "
                                               "limit (they stay in the session); send smaller batches")
            frame_start = time.perf_counter()
            try:  # one frame's pixels at a time: a batch never holds more than one decoded frame
                image = decode_image(raw, max_side_px=state.settings.max_image_side_px)
            except ApiError as exc:
                kept = f"; frames[0..{i - 1}] were analysed and stay in the session" if i else ""
                raise ApiError(exc.status_code, exc.code, f"frames[{i}]: {exc.message}{kept}") from None
            raws[i] = b""
            outcome = session.process(image, frame.timestamp_s)
            del image
            _record(state, outcome)
            results.append(_frame_result(session_id, outcome, time.perf_counter() - frame_start))
    last = results[-1]
    return BatchResult(
        session_id=session_id, frames=results, frames_processed=len(results),
        frames_with_face=sum(r.face_detected for r in results),
        frames_with_several_faces=sum(r.warning is not None for r in results),
        heart_rate_bpm=last.heart_rate_bpm, heart_rate_confidence=last.heart_rate_confidence,
        processing_ms=round((time.perf_counter() - start) * 1000, 2),
    )


def _report(state: ApiState, session_id: str) -> SessionReport:
    with state.store.use(session_id, wait_s=_lock_wait_s(state)) as session:
        summaries = session.summaries()
        frames = session.frames_received
    report: dict[str, Any] = {"session_id": session_id, "frames_received": frames}
    report.update(json_value(summaries.get("vitals") or {}))
    for name in ("emotion", "fatigue"):
        report[name] = json_value(summaries.get(name))
    return SessionReport(**report)


# -- REST shape ----------------------------------------------------------------------------------------------
@router.post("/sessions", response_model=SessionCreated, status_code=201,
             responses=error_responses(401, 422, 503))
def create_session(state: State, options: Annotated[SessionCreate | None, Body()] = None) -> SessionCreated:
    """Open a session: its own face tracker and analyzers. At most `max_sessions`; idle ones expire."""
    return _create(state, options)


@router.get("/sessions", response_model=SessionList, responses=error_responses(401))
def list_sessions(state: State) -> SessionList:
    """Every open session (also the compatibility alias `GET /sessions`)."""
    infos = [SessionInfo(**s.info(state.settings.session_expiry_s)) for s in state.store.sessions()]
    return SessionList(sessions=infos, count=len(infos), max_sessions=state.settings.max_sessions)


@router.get("/sessions/{session_id}", response_model=SessionStatus, responses=SESSION_ERRORS)
def get_session(state: State, session_id: SessionId) -> SessionStatus:
    """A session's counts, measured frame rate and the analyzers' latest states."""
    return _status(state, session_id)


@router.delete("/sessions/{session_id}", response_model=SessionDeleted, responses=SESSION_ERRORS)
def delete_session(state: State, session_id: SessionId) -> SessionDeleted:
    """Close a session and free its tracker."""
    return _delete(state, session_id)


@router.post("/sessions/{session_id}/frames", response_model=FrameResult, responses=FRAME_ERRORS)
def post_frame(state: State, session_id: SessionId, frame: FrameIn) -> FrameResult:
    """Analyse one frame. A frame with no face answers 422 and counts as a gap; with several faces the largest
    is measured and `warning` says so."""
    return _analyze_frame(state, session_id, frame)


@router.post("/sessions/{session_id}/frames:batch", response_model=BatchResult, responses=FRAME_ERRORS)
def post_frames(state: State, request: Request, session_id: SessionId, batch: FrameBatch) -> BatchResult:
    """Analyse ordered frames in one request; a frame without a usable face carries its own `error`."""
    return _analyze_batch(state, request, session_id, batch)


@router.get("/sessions/{session_id}/report", response_model=SessionReport, responses=SESSION_ERRORS)
def session_report(state: State, session_id: SessionId) -> SessionReport:
    """The analyzers' summaries over the session so far (the clip report's keys)."""
    return _report(state, session_id)


# -- compatibility aliases------------------------------------------------------------------------------------
@alias_router.post("/create-session", response_model=SessionCreated, status_code=201,
                  responses=error_responses(401, 422, 503))
def create_session_alias(state: State, options: Annotated[SessionCreate | None, Body()] = None) -> SessionCreated:
    """Alias of `POST /sessions`."""
    return _create(state, options)


@alias_router.get("/session/{session_id}/status", response_model=SessionStatus, responses=SESSION_ERRORS)
def session_status_alias(state: State, session_id: SessionId) -> SessionStatus:
    """Alias of `GET /sessions/{session_id}`."""
    return _status(state, session_id)


@alias_router.delete("/session/{session_id}", response_model=SessionDeleted, responses=SESSION_ERRORS)
def delete_session_alias(state: State, session_id: SessionId) -> SessionDeleted:
    """Alias of `DELETE /sessions/{session_id}`."""
    return _delete(state, session_id)


@alias_router.post("/analyze-image", response_model=FrameResult, responses=FRAME_ERRORS)
def analyze_image(state: State, body: AnalyzeImageRequest) -> FrameResult:
    """One base64 frame for `session_id` (as `POST /sessions/{id}/frames`); without `session_id`, a one-off
    analysis of a photo (face, head pose, emotion; no heart rate)."""
    if body.session_id is None:
        return _analyze_photo(state, body)
    return _analyze_frame(state, body.session_id, body)


@alias_router.post("/analyze-batch", response_model=BatchResult, responses=FRAME_ERRORS)
def analyze_batch(state: State, request: Request, body: AnalyzeBatchRequest) -> BatchResult:
    """Ordered base64 frames for `session_id` (as `POST /sessions/{id}/frames:batch`)."""
    return _analyze_batch(state, request, body.session_id, body)

