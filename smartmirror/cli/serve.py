"""``smartmirror serve``: the REST API on uvicorn (heavy imports inside the function)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
WILDCARD_HOSTS = {"0.0.0.0", "::", ""}


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind; keep 127.0.0.1 unless you set SMARTMIRROR_API_KEY")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free port)")] = 8000,
) -> None:
    """Serve the REST API (OpenAPI docs at /docs). Limits come from SMARTMIRROR_* environment variables."""
    from smartmirror.api.settings import ApiSettings

    try:
        settings = ApiSettings.from_env()
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    import uvicorn

    from smartmirror.api.app import create_app

    if host not in LOOPBACK_HOSTS and not settings.api_key:
        typer.echo(f"warning: serving on {host} without SMARTMIRROR_API_KEY; anyone who can reach it may use it",
                   err=True)
    settings = _hosts_for_bind(settings, host)
    server = uvicorn.Server(uvicorn_config(create_app(settings), settings, host=host, port=port, log_level="info"))
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the captured Ctrl-C after its clean shutdown
        pass


def _hosts_for_bind(settings, host: str):
    """Add the bound address to the allowed Host names (unless SMARTMIRROR_ALLOWED_HOSTS was set)."""
    import os

    from smartmirror.api.settings import ENV_PREFIX

    if os.environ.get(ENV_PREFIX + "ALLOWED_HOSTS", "").strip() or host in LOOPBACK_HOSTS:
        return settings
    if host in WILDCARD_HOSTS:
        typer.echo(f"warning: serving on every interface ({host or '*'}) answers any Host name; set "
                   "SMARTMIRROR_ALLOWED_HOSTS to this machine's names to refuse DNS rebinding", err=True)
        return settings.with_overrides(allowed_hosts=("*",))
    return settings.with_overrides(allowed_hosts=(*settings.allowed_hosts, host.strip("[]").lower()))


def uvicorn_config(app, settings, **options):
    """uvicorn's config with the API's connection limits: a deadline and a size bound for the request line and
    headers (slowloris), a keep-alive timeout and a connection cap."""
    import uvicorn

    from smartmirror.api.routes.protocol import guarded_protocol

    options.setdefault("timeout_graceful_shutdown", 10)
    return uvicorn.Config(
        app,
        http=guarded_protocol(settings.header_timeout_s, settings.max_header_bytes),
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_keep_alive=settings.keep_alive_s,
        limit_concurrency=settings.max_connections,
        **options,
    )


@contextmanager
def running_server(app, host: str = "127.0.0.1", port: int = 0, start_timeout_s: float = 60.0,
                   settings=None) -> Iterator[str]:
    """Run ``app`` on uvicorn in a background thread (for tests and benchmarks); yields its base URL.

    ``settings`` (default: the app's own, else the defaults) give the connection limits, as ``smartmirror serve``.

    ``port=0`` binds a free ephemeral port. The server stops (lifespan shutdown included) when the block ends.

    Raises
    ------
    RuntimeError
        When the server does not start within ``start_timeout_s``.
    """
    import socket
    import threading
    import time

    import uvicorn

    from smartmirror.api.settings import ApiSettings

    settings = settings or getattr(app.state, "settings", None) or ApiSettings()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, settings, log_level="warning", lifespan="on",
                                           timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="smartmirror-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
