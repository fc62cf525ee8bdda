"""Errors as JSON, always: ``{"error": {"code", "message"}}`` with the right 4xx/5xx status, never an HTML page."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from smartmirror.api.routes.models import ErrorResponse
from smartmirror.errors import error_object
from smartmirror.vitals.methods import get_method, list_methods

log = logging.getLogger(__name__)

#: Default machine-readable codes for statuses raised without one (routing, methods, framework errors).
DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    431: "headers_too_large",
    500: "internal_error",
    503: "unavailable",
    504: "timeout",
}


class ApiError(StarletteHTTPException):
    """An HTTP error with a stable machine-readable ``code`` (rendered by the JSON handlers)."""

    def __init__(self, status_code: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.code = code
        self.message = message


def error_response(status_code: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON error response."""
    return JSONResponse(error_object(code, message), status_code=status_code, headers=headers)


def _http_exception_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = getattr(exc, "code", None) or DEFAULT_CODES.get(exc.status_code) or _status_phrase(exc.status_code)
    detail = exc.detail
    if not isinstance(detail, str):
        detail = json.dumps(detail, default=str)
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        allowed = _allowed_methods(request)
        if allowed:
            headers["Allow"] = ", ".join(allowed)
        if detail == "Method Not Allowed":
            detail = f"{request.method} is not allowed on {request.url.path}; use {', '.join(allowed) or '-'}"
    elif exc.status_code == 400 and detail == "There was an error parsing the body":
        code, detail = "invalid_json", "The request body is not valid JSON (or not UTF-8)"
    return error_response(exc.status_code, code, detail, headers=headers or None)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on this path (Starlette's own Allow names only the first route's)."""
    from starlette.routing import Match

    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


def _validation_message(errors: list[dict[str, Any]], limit: int = 5) -> str:
    parts = []
    for error in errors[:limit]:
        location = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{location}: {error.get('msg', 'invalid')}")
    more = len(errors) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "invalid_json", "The request body is not valid JSON")
    if errors and all(tuple(e.get("loc", ()))[-1:] == ("pulse_method",) for e in errors):
        return error_response(422, "unknown_pulse_method", _validation_message(errors))
    return error_response(422, "invalid_request", _validation_message(errors))


def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", f"Internal error ({exc.__class__.__name__}); see the server log")


def _status_phrase(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def install_error_handlers(app: FastAPI) -> None:
    """Answer HTTP errors, validation errors and unexpected exceptions with the JSON error object."""
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(Exception, _unexpected_handler)


#: OpenAPI ``responses=`` entries for the error statuses a route documents.
def error_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Malformed input (bad base64, empty upload, invalid JSON or UTF-8, bad Content-Length)",
        401: "Missing or wrong X-API-Key",
        403: "Origin or Host header not allowed (cross-site use, DNS rebinding)",
        404: "Unknown session",
        409: "Frame out of order, or the session is busy",
        410: "The session expired after inactivity",
        413: "Body, image or clip larger than the limits",
        415: "Not an image / not a video, or a body that is not JSON / multipart/form-data",
        422: "Invalid request, or no usable face",
        503: "Too many sessions or analyses at once",
        504: "The request took longer than its time limit",
    }
    return {code: {"model": ErrorResponse, "description": descriptions.get(code, "Error")} for code in status_codes}


def check_pulse_method(name: str | None, *, live: bool = False) -> None:
    """Raise 422 unless ``name`` is None or a registered pulse method (a real-time one for a ``live`` session)."""
    if name is None:
        return
    try:
        method = get_method(name)
    except ValueError as exc:
        raise ApiError(422, "unknown_pulse_method", str(exc)) from None
    if live and not method.realtime:
        raise ApiError(422, "pulse_method_not_realtime",
                       f"{name!r} is too slow for live sessions; choose one of "
                       f"{', '.join(list_methods(realtime_only=True))} (any method works on /analyze-video)")
