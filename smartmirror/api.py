"""SmartMirror's REST API: sessions fed frame by frame, ordered batches, whole clips, health, status and metrics.

Build the app with :func:`create_app` (settings from ``SMARTMIRROR_*`` environment variables unless given) and run
it with ``smartmirror serve`` or ``uvicorn --factory smartmirror.api:create_app``. OpenAPI docs are at ``/docs``.
Every answer is JSON; every failure is ``{"error": {"code", "message"}}`` with its 4xx/5xx status.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from smartmirror.api_routes import clips, sessions, system
from smartmirror.api_routes.errors import error_response, install_error_handlers
from smartmirror.api_routes.metrics import ApiMetrics
from smartmirror.api_routes.middleware import JsonCORSMiddleware, RequestGuard
from smartmirror.api_routes.state import ApiState, package_version
from smartmirror.api_sessions import (
    FrameOrderError,
    SessionBusy,
    SessionError,
    SessionExpired,
    SessionNotFound,
    TooManySessions,
)
from smartmirror.api_settings import ApiSettings

log = logging.getLogger(__name__)

#: HTTP status of each session refusal.
SESSION_ERROR_STATUS: dict[type[SessionError], int] = {
    SessionNotFound: 404,
    SessionExpired: 410,
    SessionBusy: 409,
    FrameOrderError: 409,
    TooManySessions: 503,
}

DESCRIPTION = """
Local, offline analysis of a face on camera: heart rate (rPPG), emotion and fatigue, per session or per clip.

* **Sessions**: `POST /sessions`, then send frames (`POST /sessions/{id}/frames`, base64 image and the capture
  `timestamp_s`) or ordered batches (`POST /sessions/{id}/frames:batch`). Heart rate appears once enough seconds
  of frames were seen. Idle sessions expire after 5 minutes.
* **Clips**: `POST /analyze-video` (multipart `file`) answers the same report as `smartmirror analyze --json`.
* Every failure is `{"error": {"code": ..., "message": ...}}` with a 4xx/5xx status.

A wellness demo, not a medical device.
"""


def _session_error_handler(request: Request, exc: SessionError) -> JSONResponse:
    status = next((code for cls, code in SESSION_ERROR_STATUS.items() if isinstance(exc, cls)), 409)
    headers = {"Retry-After": str(max(1, round(exc.retry_after_s)))} if exc.retry_after_s else None
    return error_response(status, exc.code, exc.message, headers)


async def _sweep_forever(state: ApiState) -> None:
    """Expire idle sessions every ``sweep_interval_s`` (lazy expiry covers the time between sweeps)."""
    interval = min(state.settings.sweep_interval_s, state.settings.session_expiry_s)
    while True:
        await asyncio.sleep(interval)
        try:
            await run_in_threadpool(state.store.sweep)
        except Exception:
            log.exception("session sweep failed")


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The FastAPI application; shared parts (MediaPipe, analyzer weights, sessions) load in its lifespan.

    Parameters
    ----------
    settings : ApiSettings, optional
        Limits and switches; default :meth:`ApiSettings.from_env`.
    """
    settings = settings or ApiSettings.from_env()
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state = await run_in_threadpool(ApiState.start, settings, metrics)
        app.state.api = state
        sweeper = asyncio.create_task(_sweep_forever(state), name="smartmirror-session-sweeper")
        try:
            yield
        finally:
            sweeper.cancel()
            await run_in_threadpool(state.stop)

    app = FastAPI(
        title="SmartMirror API",
        version=package_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_exception_handler(SessionError, _session_error_handler)
    app.add_middleware(RequestGuard, settings=settings, metrics=metrics)
    if settings.cors_origins:
        app.add_middleware(
            JsonCORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Content-Type", "X-API-Key"],
            max_age=600,
        )
    app.include_router(system.router)
    app.include_router(sessions.router)
    app.include_router(sessions.seed_router)
    app.include_router(clips.router)
    if settings.api_key:
        _document_api_key(app)
    return app


def _document_api_key(app: FastAPI) -> None:
    """Declare the X-API-Key header in the OpenAPI schema (the middleware enforces it)."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            schema.setdefault("components", {})["securitySchemes"] = {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}
            }
            schema["security"] = [{"ApiKey": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
