"""Liveness, status and Prometheus metrics."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from smartmirror.api.routes.errors import error_responses
from smartmirror.api.routes.models import Health, SystemStatus
from smartmirror.api.routes.state import ApiState, api_state, cpu_count, process_rss_mb
from smartmirror.vitals import VitalsAnalyzer
from smartmirror.vitals.methods import list_methods

router = APIRouter(tags=["system"])
State = Annotated[ApiState, Depends(api_state)]


@router.get("/health", response_model=Health)
def health(state: State) -> Health:
    """Liveness: the server answers (no API key needed)."""
    return Health(status="ok", version=state.version, uptime_s=round(state.uptime_s(), 3),
                  time=datetime.now(UTC).isoformat(timespec="milliseconds"))


def pulse_methods(realtime_only: bool = False) -> list[str]:
    """Registered pulse-method names."""
    return list_methods(realtime_only=realtime_only)


def default_pulse_method(state: ApiState) -> str | None:
    """The method sessions use when none is asked for: the server setting, else VitalsAnalyzer's default."""
    if state.settings.pulse_method:
        return state.settings.pulse_method
    parameter = inspect.signature(VitalsAnalyzer).parameters.get("method")
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return None
    return parameter.default


@router.get("/status", response_model=SystemStatus, responses=error_responses(401))
def status(state: State) -> SystemStatus:
    """Sessions, frames, running clip analyses, installed analyzers, pulse methods and limits."""
    return SystemStatus(
        status="ok",
        version=state.version,
        uptime_s=round(state.uptime_s(), 3),
        sessions_active=len(state.store),
        max_sessions=state.settings.max_sessions,
        frames_processed=state.metrics.frames_total(),
        video_analyses_running=state.videos_running,
        analyzers=state.analyzers,
        pulse_methods=pulse_methods(),
        default_pulse_method=default_pulse_method(state),
        limits=state.settings.public_limits(),
        process_rss_mb=process_rss_mb(),
        cpu_count=cpu_count(),
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition"},
               **error_responses(401)},
)
def metrics(state: State) -> Response:
    """Prometheus metrics: requests, latencies, sessions, frames, analyzer timings, process memory."""
    body, content_type = state.metrics.render()
    return Response(content=body, media_type=content_type)
