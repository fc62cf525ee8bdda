"""Settings of the REST API: a frozen dataclass read from ``SMARTMIRROR_*`` environment variables.

Every limit has a unit in its name. ``ApiSettings.from_env()`` raises ``ValueError`` naming the variable when a
value cannot be parsed, so a typo stops the server at start-up instead of silently using a default.

=====================================  ===========================  ================================================
variable                               field                        default
=====================================  ===========================  ================================================
SMARTMIRROR_API_KEY                    api_key                      unset: no key needed; set: header ``X-API-Key``
                                                                    (set but blank: refused)
SMARTMIRROR_CORS_ORIGINS               cors_origins                 empty (comma-separated allow-list, or ``*``);
                                                                    other Origins get 403 ``origin_not_allowed``
SMARTMIRROR_ALLOWED_HOSTS              allowed_hosts                127.0.0.1,localhost,::1 (Host header names;
                                                                    ``*``: any); others get 403 ``host_not_allowed``
SMARTMIRROR_MAX_SESSIONS               max_sessions                 100
SMARTMIRROR_SESSION_EXPIRY_S           session_expiry_s             300 (inactivity)
SMARTMIRROR_SWEEP_INTERVAL_S           sweep_interval_s             15
SMARTMIRROR_SESSION_BUFFER_FRAMES      buffer_frames                200 (also the most frames in one batch)
SMARTMIRROR_SESSION_BUFFER_S           buffer_seconds               20
SMARTMIRROR_MAX_UPLOAD_MB              max_upload_bytes             50 MB (any request body)
SMARTMIRROR_MAX_CLIP_S                 max_clip_seconds             120
SMARTMIRROR_MAX_IMAGE_PX               max_image_side_px            4096 (width and height, read from the header)
SMARTMIRROR_MAX_BATCH_MPX              max_batch_megapixels         200 (all frames of one batch together)
SMARTMIRROR_MAX_CLIP_PX                max_clip_side_px             3840 (clip width and height, from the container)
SMARTMIRROR_CLIP_ANALYSIS_PX           clip_analysis_side_px        1280 (larger clip frames are downscaled)
SMARTMIRROR_REQUEST_TIMEOUT_S          request_timeout_s            30 (every request but clips)
SMARTMIRROR_VIDEO_TIMEOUT_S            video_timeout_s              180 (clip uploads and their analysis)
SMARTMIRROR_MAX_CONCURRENT_VIDEOS      max_concurrent_videos        1 (clip analyses at once; more get 503)
SMARTMIRROR_HEADER_TIMEOUT_S           header_timeout_s             10 (request line and headers must arrive)
SMARTMIRROR_KEEP_ALIVE_S               keep_alive_s                 5 (idle keep-alive connections are closed)
SMARTMIRROR_MAX_HEADER_BYTES           max_header_bytes             16384 (request line and headers together)
SMARTMIRROR_MAX_CONNECTIONS            max_connections              200 (more answer uvicorn's plain 503)
SMARTMIRROR_PULSE_METHOD               pulse_method                 unset: the vitals package's default
SMARTMIRROR_EMOTION_INTERVAL_S         emotion_interval_s           0.2 (emotion at most 5 times per second of
                                                                    frames in a session; 0: every frame)
=====================================  ===========================  ================================================
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from smartmirror.vitals.methods import get_method

ENV_PREFIX = "SMARTMIRROR_"

#: Host names a server bound to loopback answers to (anything else may be DNS rebinding).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

#: Variables that must not be blank when set (a blank key would silently turn authentication off).
_NOT_BLANK = {"API_KEY"}


@dataclass(frozen=True)
class ApiSettings:
    """Limits and switches of the REST API (units in the names)."""

    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    max_sessions: int = 100
    session_expiry_s: float = 300.0
    sweep_interval_s: float = 15.0
    buffer_frames: int = 200
    buffer_seconds: float = 20.0
    max_upload_bytes: int = 50 * 1024 * 1024
    max_clip_seconds: float = 120.0
    max_image_side_px: int = 4096
    max_batch_megapixels: float = 200.0
    max_clip_side_px: int = 3840
    clip_analysis_side_px: int = 1280
    request_timeout_s: float = 30.0
    video_timeout_s: float = 180.0
    max_concurrent_videos: int = 1
    header_timeout_s: float = 10.0
    keep_alive_s: float = 5.0
    max_header_bytes: int = 16384
    max_connections: int = 200
    pulse_method: str | None = None
    emotion_interval_s: float = 0.2

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ApiSettings:
        """Read the settings from ``environ`` (default ``os.environ``); keyword overrides win.

        Raises
        ------
        ValueError
            Naming the variable whose value is not valid.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, field_name, parse in _ENV_FIELDS:
            raw = environ.get(ENV_PREFIX + name)
            if raw is not None and raw.strip() == "" and name in _NOT_BLANK:
                raise ValueError(f"{ENV_PREFIX}{name} is set but blank; unset it (no key needed) or set a key")
            if raw is None or raw.strip() == "":
                continue
            try:
                values[field_name] = parse(raw.strip())
            except ValueError as exc:
                raise ValueError(f"{ENV_PREFIX}{name}={raw!r} is not valid: {exc}") from None
        settings = cls(**{**values, **overrides})
        settings.check()
        return settings

    def with_overrides(self, **changes: Any) -> ApiSettings:
        """A copy with some fields changed (checked)."""
        settings = replace(self, **changes)
        settings.check()
        return settings

    def check(self) -> None:
        """Raise ``ValueError`` when a limit is out of range."""
        positive = ("max_sessions", "session_expiry_s", "sweep_interval_s", "buffer_frames", "buffer_seconds",
                    "max_upload_bytes", "max_clip_seconds", "max_image_side_px", "request_timeout_s",
                    "video_timeout_s", "max_concurrent_videos", "max_batch_megapixels", "max_clip_side_px",
                    "clip_analysis_side_px", "header_timeout_s", "keep_alive_s", "max_header_bytes",
                    "max_connections")
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not (math.isfinite(self.emotion_interval_s) and self.emotion_interval_s >= 0):
            raise ValueError(f"emotion_interval_s must be >= 0, got {self.emotion_interval_s!r}")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key must be a non-blank string or None")
        if not self.allowed_hosts:
            raise ValueError("allowed_hosts must name at least one host (or '*')")
        if self.pulse_method is not None:
            _check_pulse_method(self.pulse_method)

    def public_limits(self) -> dict[str, Any]:
        """The limits a client may see (no secrets)."""
        hidden = {"api_key", "cors_origins", "allowed_hosts"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in hidden}


def _parse_origins(raw: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ValueError(f"origin {origin!r} must start with http:// or https://")
    return origins


def _parse_hosts(raw: str) -> tuple[str, ...]:
    hosts = tuple(h.strip().lower() for h in raw.split(",") if h.strip())
    for host in hosts:
        bare = host.strip("[]")
        if ":" in bare:
            try:
                ipaddress.IPv6Address(bare)
            except ValueError:
                raise ValueError(f"host {host!r} must be a bare name or address, without a port") from None
        elif "/" in host or " " in host:
            raise ValueError(f"host {host!r} must be a bare name or address (no scheme or path)")
    return tuple(h.strip("[]") for h in hosts)


def _check_pulse_method(name: str) -> str:
    """``name`` when it is a registered pulse method; ``ValueError`` listing the choices otherwise."""
    get_method(name)
    return name


def _parse_megabytes(raw: str) -> int:
    return int(float(raw) * 1024 * 1024)


_ENV_FIELDS: tuple[tuple[str, str, Callable[[str], Any]], ...] = (
    ("API_KEY", "api_key", str),
    ("CORS_ORIGINS", "cors_origins", _parse_origins),
    ("ALLOWED_HOSTS", "allowed_hosts", _parse_hosts),
    ("MAX_SESSIONS", "max_sessions", int),
    ("SESSION_EXPIRY_S", "session_expiry_s", float),
    ("SWEEP_INTERVAL_S", "sweep_interval_s", float),
    ("SESSION_BUFFER_FRAMES", "buffer_frames", int),
    ("SESSION_BUFFER_S", "buffer_seconds", float),
    ("MAX_UPLOAD_MB", "max_upload_bytes", _parse_megabytes),
    ("MAX_CLIP_S", "max_clip_seconds", float),
    ("MAX_IMAGE_PX", "max_image_side_px", int),
    ("MAX_BATCH_MPX", "max_batch_megapixels", float),
    ("MAX_CLIP_PX", "max_clip_side_px", int),
    ("CLIP_ANALYSIS_PX", "clip_analysis_side_px", int),
    ("REQUEST_TIMEOUT_S", "request_timeout_s", float),
    ("VIDEO_TIMEOUT_S", "video_timeout_s", float),
    ("MAX_CONCURRENT_VIDEOS", "max_concurrent_videos", int),
    ("HEADER_TIMEOUT_S", "header_timeout_s", float),
    ("KEEP_ALIVE_S", "keep_alive_s", float),
    ("MAX_HEADER_BYTES", "max_header_bytes", int),
    ("MAX_CONNECTIONS", "max_connections", int),
    ("PULSE_METHOD", "pulse_method", _check_pulse_method),
    ("EMOTION_INTERVAL_S", "emotion_interval_s", float),
)
