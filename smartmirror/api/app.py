"""SmartMirror's REST API: sessions fed frame by frame, ordered batches, whole clips, health, status and metrics.

Build the app with :func:`create_app` (settings from ``SMARTMIRROR_*`` environment variables unless given) and run
it with ``smartmirror serve`` or ``uvicorn --factory smartmirror.api.app:create_app``. OpenAPI docs are at ``/docs``.
Every answer is JSON; every failure is ``{"error": {"code", "message"}}`` with its 4xx/5xx status.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, JSONResponse

from smartmirror.api.routes import clips, sessions, system
from smartmirror.api.routes.errors import error_response, error_responses, install_error_handlers
from smartmirror.api.routes.metrics import ApiMetrics
from smartmirror.api.routes.middleware import DOCS_STATIC_PATH, JsonCORSMiddleware, RequestGuard
from smartmirror.api.routes.state import ApiState, package_version
from smartmirror.api.sessions import (
    FrameOrderError,
    SessionBusy,
    SessionError,
    SessionExpired,
    SessionNotFound,
    TooManySessions,
)
from smartmirror.api.settings import ApiSettings

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

    local_docs = _swagger_ui_dir()
    app = FastAPI(
        title="SmartMirror API",
        version=package_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None if local_docs else "/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    if local_docs:
        _serve_docs_offline(app, local_docs)
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
    guard_errors = error_responses(400, 403, 413, 415, 504)  # what the middleware may answer on any route
    for router in (system.router, sessions.router, sessions.alias_router, clips.router):
        app.include_router(router, responses=guard_errors)
    if settings.api_key:
        _document_api_key(app)
    return app


def _swagger_ui_dir() -> Path | None:
    """Swagger UI's files from the ``swagger-ui-py`` package, when installed (else /docs loads them from a CDN)."""
    try:
        import swagger_ui
    except ImportError:
        return None
    static = Path(swagger_ui.__file__).parent / "static"
    return static if (static / "swagger-ui-bundle.js").exists() else None


def _serve_docs_offline(app: FastAPI, static_dir: Path) -> None:
    """/docs with Swagger UI served by this server (the mirror works offline, and so do its docs)."""
    from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
    from starlette.staticfiles import StaticFiles

    app.mount(DOCS_STATIC_PATH, StaticFiles(directory=static_dir), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui_html() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title=f"{app.title} - docs",
            swagger_js_url=f"{DOCS_STATIC_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_STATIC_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_STATIC_PATH}/favicon-32x32.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()


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
