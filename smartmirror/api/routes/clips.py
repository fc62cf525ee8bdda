"""Whole clips: a multipart video upload answered with the same JSON report as ``smartmirror analyze --json``.

The upload is streamed into one private temp file (:mod:`smartmirror.api.routes.uploads`), removed when the
analysis ends, whatever happens. Before any frame is decoded the container is probed: its resolution (at most
``max_clip_side_px`` a side), its duration (at most ``max_clip_seconds``) and its frame count (at most
:data:`MAX_CLIP_FPS` per second of the limit). Frames larger than ``clip_analysis_side_px`` are downscaled for
the tracker. At most ``max_concurrent_videos`` analyses run at once; more answer 503 with ``Retry-After``; an
analysis past the time limit answers 504 and its worker stops at the next frame.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from smartmirror.analyzer import json_value
from smartmirror.api.routes.errors import ApiError, check_pulse_method, error_responses
from smartmirror.api.routes.media import probe_video
from smartmirror.api.routes.middleware import DEADLINE_KEY
from smartmirror.api.routes.state import ApiState, api_state
from smartmirror.api.routes.uploads import receive_upload
from smartmirror.api.sessions import release_memory
from smartmirror.frames import VideoError
from smartmirror.report import analyze_video
from smartmirror.report_model import Report

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
    "clip_too_large": 413,
    "file_too_large": 413,
    "cancelled": 504,
}



def _remove_upload(path: Path) -> None:
    """Remove the upload and its private folder."""
    shutil.rmtree(path.parent, ignore_errors=True)


def _video_error(exc: VideoError) -> ApiError:
    return ApiError(VIDEO_ERROR_STATUS.get(exc.code, 422), exc.code, exc.message)


def _run_analysis(state: ApiState, path: Path, method: str | None, identity: bool,
                  cancel: threading.Event) -> dict[str, Any]:
    """Worker: analyse, then always remove the upload, free the slot and hand freed memory back."""
    start = time.perf_counter()
    state.video_started()
    try:
        return analyze_video(path, method=method, identity=identity,
                             max_side_px=state.settings.clip_analysis_side_px, cancel=cancel)
    finally:
        _remove_upload(path)
        state.video_finished()
        state.video_slots.release()
        state.metrics.video_seconds.observe(time.perf_counter() - start)
        release_memory()


async def _analyze_upload(state: ApiState, request: Request, method: str | None, identity: bool,
                          fields: tuple[str, ...]) -> JSONResponse:
    check_pulse_method(method)
    method = method or state.settings.pulse_method
    folder = state.uploads.new_request_folder()
    path = folder / "upload.bin"
    handed_to_worker = False
    outcome = "ok"
    try:
        path = await receive_upload(request, folder, fields)
        limits = state.settings
        try:
            await run_in_threadpool(probe_video, path, max_seconds=limits.max_clip_seconds,
                                    max_side_px=limits.max_clip_side_px)
        except VideoError as exc:
            raise _video_error(exc) from None
        if not state.video_slots.acquire(blocking=False):
            raise ApiError(503, "analyses_busy",
                           f"{limits.max_concurrent_videos} clip analysis(es) already running; retry shortly",
                           headers={"Retry-After": "5"})
        cancel = threading.Event()
        try:
            future = state.video_workers.submit(_run_analysis, state, path, method, identity, cancel)
        except RuntimeError:  # shutting down
            state.video_slots.release()
            raise ApiError(503, "unavailable", "The server is shutting down") from None
        handed_to_worker = True
        remaining = request.scope.get(DEADLINE_KEY, time.monotonic() + 3600) - time.monotonic() - 0.5
        try:
            report = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)),
                                            timeout=max(remaining, 0.1))
        except TimeoutError:
            raise ApiError(504, "timeout", f"The clip analysis took longer than the limit of "
                                           f"{limits.video_timeout_s:g} s; it was stopped") from None
        except VideoError as exc:
            raise _video_error(exc) from None
        except ImportError:
            raise ApiError(503, "unavailable", "The clip analyzer (smartmirror.report) is not installed") from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("clip analysis failed")
            raise ApiError(500, "analysis_failed", f"The clip analysis failed ({exc.__class__.__name__})") from None
        finally:
            if not future.done():
                cancel.set()   # the worker stops at its next frame and frees the slot
        return JSONResponse(json_value(report))
    except ApiError as exc:
        outcome = exc.code
        raise
    finally:
        state.metrics.video_analyses.labels(outcome).inc()
        if not handed_to_worker:
            _remove_upload(path)


CLIP_ERRORS = error_responses(400, 401, 413, 415, 422, 503, 504)
Method = Annotated[str | None, Query(max_length=64, description="rPPG method (GET /status lists them)")]
Identity = Annotated[bool, Query(description="Also estimate age and gender (opt-in)")]


def _upload_body(*fields: str) -> dict[str, Any]:
    """The OpenAPI request body of a clip upload (the route streams it itself, so FastAPI cannot infer it)."""
    properties = {name: {"type": "string", "format": "binary",
                         "description": "The clip (any container/codec FFmpeg reads; <= 50 MB, <= 120 s, "
                                        "<= 3840 px a side)"} for name in fields}
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if len(fields) == 1:
        schema["required"] = list(fields)
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


@router.post("/analyze-video", response_model=Report, responses=CLIP_ERRORS, openapi_extra=_upload_body("file"))
async def analyze_video_upload(state: State, request: Request, method: Method = None,
                               identity: Identity = False) -> JSONResponse:
    """The whole clip report (heart rate, HRV, respiration, SpO2, stress, emotion, fatigue, quality, faces,
    timings)."""
    return await _analyze_upload(state, request, method, identity, ("file",))


@router.post("/save_video", response_model=Report, responses=CLIP_ERRORS,
             openapi_extra=_upload_body("file", "video"))
async def save_video(state: State, request: Request, method: Method = None,
                     identity: Identity = False) -> JSONResponse:
    """Compatibility alias of `POST /analyze-video` (the file field may also be named `video`)."""
    return await _analyze_upload(state, request, method, identity, ("file", "video"))
