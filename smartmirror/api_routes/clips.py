"""Whole clips: a multipart video upload answered with the same JSON report as ``smartmirror analyze --json``.

The upload goes to one temp file (named as the client named it, in its own folder under the server's private
upload folder) and is removed when the analysis ends, whatever happens (the request may already have timed out;
the worker removes it). At most ``max_concurrent_videos`` analyses run at once; more answer 503 with
``Retry-After``.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse

from smartmirror.api_routes.errors import ApiError, error_responses
from smartmirror.api_routes.media import probe_video_seconds
from smartmirror.api_routes.middleware import DEADLINE_KEY
from smartmirror.api_routes.models import ClipReport
from smartmirror.api_routes.state import ApiState, api_state
from smartmirror.api_sessions import jsonable
from smartmirror.frames import VideoError

log = logging.getLogger(__name__)

router = APIRouter(tags=["clips"])
State = Annotated[ApiState, Depends(api_state)]

#: HTTP status for each ``VideoError`` code (unknown codes: 422).
VIDEO_ERROR_STATUS = {
    "empty_file": 400,
    "not_a_video": 415,
    "no_video_stream": 415,
    "corrupt_video": 422,
    "no_frames": 422,
    "no_face": 422,
    "clip_too_long": 413,
    "file_too_large": 413,
}

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_name(filename: str | None) -> str:
    """The upload's base name with only ``[A-Za-z0-9._-]`` (the report names the clip by it)."""
    name = _UNSAFE.sub("_", Path((filename or "").replace("\\", "/")).name).lstrip(".")[-100:]
    return name or "upload.bin"


def _remove_upload(path: Path) -> None:
    """Remove the upload and its private folder."""
    shutil.rmtree(path.parent, ignore_errors=True)


def _video_error(exc: VideoError) -> ApiError:
    return ApiError(VIDEO_ERROR_STATUS.get(exc.code, 422), exc.code, exc.message)


def _check_method(name: str | None) -> None:
    if name is None:
        return
    try:
        from smartmirror.vitals.methods import get_method
    except ImportError:
        raise ApiError(422, "unknown_pulse_method", "The vitals package is not installed") from None
    try:
        get_method(name)
    except ValueError as exc:
        raise ApiError(422, "unknown_pulse_method", str(exc)) from None


def _run_analysis(state: ApiState, path: Path, method: str | None, identity: bool) -> dict[str, Any]:
    """Worker: analyse, then always remove the upload and free the slot."""
    start = time.perf_counter()
    state.video_started()
    try:
        from smartmirror.report import analyze_video

        return analyze_video(path, method=method, identity=identity)
    finally:
        _remove_upload(path)
        state.video_finished()
        state.video_slots.release()
        state.metrics.video_seconds.observe(time.perf_counter() - start)


def _analyze_upload(state: ApiState, request: Request, upload: UploadFile | None, method: str | None,
                    identity: bool) -> JSONResponse:
    if upload is None:
        raise ApiError(422, "missing_file", "Send the clip as a multipart/form-data file field named 'file'")
    _check_method(method)
    method = method or state.settings.pulse_method
    path = Path(tempfile.mkdtemp(prefix="upload-", dir=state.upload_dir)) / _safe_name(upload.filename)
    handed_to_worker = False
    outcome = "ok"
    try:
        with open(path, "xb") as out:
            shutil.copyfileobj(upload.file, out, 1 << 20)
            size = out.tell()
        if size == 0:
            raise ApiError(400, "empty_file", "The uploaded file is empty (0 bytes)")
        try:
            probe_video_seconds(path, max_seconds=state.settings.max_clip_seconds)
        except VideoError as exc:
            raise _video_error(exc) from None
        if not state.video_slots.acquire(blocking=False):
            raise ApiError(503, "analyses_busy",
                           f"{state.settings.max_concurrent_videos} clip analysis(es) already running; retry shortly",
                           headers={"Retry-After": "5"})
        try:
            future = state.video_workers.submit(_run_analysis, state, path, method, identity)
        except RuntimeError:  # shutting down
            state.video_slots.release()
            raise ApiError(503, "unavailable", "The server is shutting down") from None
        handed_to_worker = True
        remaining = request.scope.get(DEADLINE_KEY, time.monotonic() + 3600) - time.monotonic() - 0.5
        try:
            report = future.result(timeout=max(remaining, 0.1))
        except FutureTimeout:
            raise ApiError(504, "timeout", f"The clip analysis took longer than the limit of "
                                           f"{state.settings.video_timeout_s:g} s") from None
        except VideoError as exc:
            raise _video_error(exc) from None
        except ImportError:
            raise ApiError(503, "unavailable", "The clip analyzer (smartmirror.report) is not installed") from None
        except Exception as exc:
            log.exception("clip analysis failed")
            raise ApiError(500, "analysis_failed", f"The clip analysis failed ({exc.__class__.__name__})") from None
        return JSONResponse(jsonable(report))
    except ApiError as exc:
        outcome = exc.code
        raise
    finally:
        state.metrics.video_analyses.labels(outcome).inc()
        if not handed_to_worker:
            _remove_upload(path)


CLIP_ERRORS = error_responses(400, 401, 413, 415, 422, 503, 504)
Upload = Annotated[UploadFile | None, File(description="The clip (any container/codec FFmpeg reads; <= 50 MB, "
                                                       "<= 120 s)")]
Method = Annotated[str | None, Query(max_length=64, description="rPPG method (GET /status lists them)")]
Identity = Annotated[bool, Query(description="Also estimate age and gender (opt-in)")]


@router.post("/analyze-video", response_model=ClipReport, responses=CLIP_ERRORS)
def analyze_video_upload(state: State, request: Request, file: Upload = None, method: Method = None,
                         identity: Identity = False) -> JSONResponse:
    """The whole clip report (heart rate, HRV, respiration, SpO2, stress, emotion, fatigue, quality, timings)."""
    return _analyze_upload(state, request, file, method, identity)


@router.post("/save_video", response_model=ClipReport, responses=CLIP_ERRORS)
def save_video(state: State, request: Request, file: Upload = None, video: Upload = None, method: Method = None,
               identity: Identity = False) -> JSONResponse:
    """Seed 004's endpoint: as `POST /analyze-video` (the file field may also be named `video`)."""
    return _analyze_upload(state, request, file or video, method, identity)
