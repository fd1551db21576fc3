"""The OpenAPI document tells the truth: API.md's error body and statuses, never FastAPI's 422.

One mechanism for every route: the statuses a route can answer are read off what it is (its
parameters, body and auth dependencies), and a route adds the ones only it knows (a 409) with
`responses=errors(409)`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from streamia_kit.dependencies import admin_identity, current_identity, optional_identity
from streamia_kit.idempotency import IDEMPOTENCY_HEADER, WRITE_METHODS

ERROR_REF = "#/components/schemas/Error"
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "description": "API.md's error body: `error` and `message` (equal) and a snake_case `code`.",
    "type": "object",
    "required": ["error", "message", "code"],
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "code": {"type": "string"},
        "details": {"description": 'validation: `{"formErrors": [...], "fieldErrors": {...}}`'},
    },
}
DESCRIPTIONS = {
    400: "Validation error (`details.fieldErrors`) or bad request",
    401: "No token provided, or an invalid, expired or revoked one",
    403: "Wrong role, not the owner, or a refused CORS origin",
    404: "Not found",
    408: "The upload stalled: nothing received for the idle timeout (its file is removed)",
    409: "Conflict",
    413: "Request body too large",
    422: "This `Idempotency-Key` was used with another request",
    429: "Too many requests (`Retry-After`, `RateLimit-*` headers)",
    503: "A dependency is unavailable just now",
    504: "Not answered in time: nothing was done, the request may be sent again",
}
IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Any unique value (1-255 visible ASCII characters, e.g. a UUID): a retry with the"
        " same key and request gets the first answer again (`Idempotent-Replayed: true`)"
        " instead of doing the work twice, for 24 h; 409 while the first is running"
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
}
# Every `/api` route is behind the gateway: a bad or revoked token is 401 on any of them, a
# refused CORS origin 403, and there are its rate limit (429), circuit breakers (503) and
# timeout (504).
_EVERY_API_ROUTE = (401, 403, 429, 503, 504)
_OPERATIONS = ("/health", "/ready", "/metrics")


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for the error statuses a route answers that its shape does not tell."""
    return {status: _error_response(status) for status in statuses}


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS.get(status, "Error"),
        "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
    }


def _walk(dependant: Dependant) -> list[Dependant]:
    """The dependant and every sub-dependency of it (a `PageDep` brings query parameters)."""
    found = [dependant]
    for sub in dependant.dependencies:
        found += _walk(sub)
    return found


def _statuses(route: Any) -> list[int]:
    """The error statuses a route can answer, read off its parameters, body and auth."""
    every = _walk(route.dependant)
    calls = {d.call for d in every}
    has_body = bool(route.dependant.body_params) or "requestBody" in (route.openapi_extra or {})
    has_input = has_body or any(d.query_params or d.path_params or d.header_params for d in every)
    statuses: set[int] = set()
    if has_input:
        statuses.add(400)
    if calls & {current_identity, admin_identity, optional_identity}:
        statuses |= {401, 403}  # also on a service called directly, without the gateway
    if route.dependant.path_params:
        statuses.add(404)
    if has_body:
        statuses.add(413)
    body = (route.openapi_extra or {}).get("requestBody", {})
    if "multipart/form-data" in body.get("content", {}):
        statuses.add(408)  # read as it streams in, with an idle timeout
    if route.path_format.startswith("/api/"):
        statuses.update(_EVERY_API_ROUTE)
    return sorted(statuses)


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI with API.md's errors on every route (cached on the app)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Error"] = ERROR_SCHEMA
    # Included routers are views over their routes (FastAPI 0.165): walk them as OpenAPI does.
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        route: Any = context
        if not route.include_in_schema:
            continue
        operations = schema["paths"].get(route.path_format, {})
        for method in route.methods:
            operation = operations.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for status in _statuses(route):
                responses.setdefault(str(status), _error_response(status))
            if method in WRITE_METHODS and route.path_format.startswith("/api/"):
                operation.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
                for status in (400, 409, 422):  # 400: a malformed key
                    responses.setdefault(str(status), _error_response(status))
    app.openapi_schema = schema
    return schema


MULTIPART_FILE = {"type": "string", "format": "binary"}


def multipart_body(required: list[str], **fields: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra=` for an endpoint that reads its multipart form itself."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "required": required, "properties": fields}
                }
            },
        }
    }
