"""The contract: the OpenAPI document the running service publishes, and a property-based
fuzz run (schemathesis) against it on a real Redis: no 5xx, no answer that breaks the spec."""

from __future__ import annotations

import warnings
from typing import Any

import schemathesis
from conftest import Api
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from httpapi.app import create_app
from httpapi.config import ServiceConfig

CONFORMANCE = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


def test_the_openapi_document_describes_every_route_with_examples(api: Api) -> None:
    spec = api.http.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    ingest = spec["paths"]["/v1/teams/{team}/messages"]["post"]
    assert ingest["requestBody"]["content"]["application/json"]["schema"]["examples"]
    nxt = spec["paths"]["/v1/teams/{team}/advisors/{advisor}/next"]["post"]
    assert {"200", "204", "401", "403", "404", "409", "422", "503"} <= set(nxt["responses"])
    assert "application/problem+json" in nxt["responses"]["409"]["content"]
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert op.get("summary"), f"{method} {path} has no summary"


def test_the_routes_are_declared_the_way_the_next_litestar_major_still_reads() -> None:
    """Litestar 2.23+ warns of what 3.0 stops inferring (a dependency without its marker, a
    body without its media type, a query or header parameter declared the old way); the
    service would stop starting on 3.0. Building the app must raise no warning at all."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        create_app(ServiceConfig())


def test_fuzzing_the_api_finds_no_server_error_and_no_answer_outside_the_spec(
        api: Api) -> None:
    """Every operation (but the endless SSE streams, covered by test_http_live) is called
    with generated requests, as an admin; each answer must be one the spec describes."""
    spec = schemathesis.openapi.from_url(str(api.http.base_url).rstrip("/") + "/openapi.json")
    headers = {"Authorization": f"Bearer {api.admin}"}
    failures: list[str] = []
    tested = 0
    for result in spec.exclude(path_regex=r"/live$").get_all_operations():
        operation = result.ok()
        tested += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CONFORMANCE)

        try:
            fuzz()
        except Exception as exc:  # collect every operation's failure, then report all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert tested >= 35
    assert not failures, "\n\n".join(failures)
