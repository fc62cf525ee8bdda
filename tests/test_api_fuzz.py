"""Schemathesis against the API's OpenAPI schema, sent to a live uvicorn: generated requests never get a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from smartmirror.api import create_app
from smartmirror.api_commands import running_server
from smartmirror.api_settings import ApiSettings

NOT_JSON = {"/metrics"}

# Building the app is cheap (models load in its lifespan, when the server starts); the schema is read in-process.
APP = create_app(ApiSettings().with_overrides(max_clip_seconds=5.0))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def live_url():
    with running_server(APP) as url:
        yield url


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_generated_requests_never_get_a_server_error(case, live_url):
    response = case.call(base_url=live_url, timeout=60)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    if case.path not in NOT_JSON:
        assert response.headers["content-type"][0].startswith("application/json"), response.headers
        if response.status_code >= 400:
            error = response.json()["error"]
            assert error["code"] and error["message"]
    assert list(APP.state.api.upload_dir.iterdir()) == []
