"""Schemathesis against the API's OpenAPI schema, sent to a live uvicorn: generated requests never get a 5xx, and
every answer conforms to the schema (documented status, content type and body; invalid data is refused; 405s
carry an ``Allow`` header)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    allow_header_conformance,
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from smartmirror.api.app import create_app
from smartmirror.api.settings import ApiSettings
from smartmirror.cli.serve import running_server

NOT_JSON = {"/metrics"}
CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection, allow_header_conformance)

# Building the app is cheap (models load in its lifespan, when the server starts); the schema is read in-process.
# "testserver": the Host of the in-process client that reads the schema (the live server is on 127.0.0.1)
APP = create_app(ApiSettings().with_overrides(max_clip_seconds=5.0,
                                              allowed_hosts=(*ApiSettings().allowed_hosts, "testserver")))
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
    case.validate_response(response, checks=CHECKS)
    if case.path not in NOT_JSON:
        assert response.headers["content-type"][0].startswith("application/json"), response.headers
        if response.status_code >= 400:
            error = response.json()["error"]
            assert error["code"] and error["message"]
    assert list(APP.state.api.uploads.folder.iterdir()) == []
