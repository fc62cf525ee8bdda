"""Routers, models, middleware and shared state of the REST API (assembled by :func:`smartmirror.api.create_app`)."""
