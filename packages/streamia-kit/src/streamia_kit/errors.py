"""One error type and the handlers that render API.md's error and validation shapes."""

from __future__ import annotations

import re
import traceback
from typing import Any

import orjson
import structlog
from aiohttp import ClientError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from streamia_kit.faults import TransientError, is_transient

log = structlog.get_logger("streamia.errors")


def error_body(message: str, code: str, details: Any = None) -> dict[str, Any]:
    """The API.md error shape: both `error` and `message`, a snake_case `code`."""
    body: dict[str, Any] = {"error": message, "message": message, "code": code}
    if details is not None:
        body["details"] = details
    return body


class StreamiaError(Exception):
    """A domain error that knows its HTTP status and code."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        status: int | None = None,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status or type(self).status
        self.code = code or type(self).code
        self.details = details
        self.headers = headers


class BadRequest(StreamiaError):
    status, code = 400, "bad_request"


class Unauthorized(StreamiaError):
    status, code = 401, "unauthorized"


class Forbidden(StreamiaError):
    status, code = 403, "forbidden"


class NotFound(StreamiaError):
    status, code = 404, "not_found"


class Conflict(StreamiaError):
    status, code = 409, "conflict"


class PayloadTooLarge(StreamiaError):
    status, code = 413, "payload_too_large"


class ServiceUnavailable(StreamiaError):
    status, code = 503, "service_unavailable"


class ValidationFailed(StreamiaError):
    """400 with the monolith's zod-like `details: {formErrors, fieldErrors}`."""

    status, code = 400, "validation_error"

    def __init__(
        self, field_errors: dict[str, list[str]] | None = None, form_errors: list[str] | None = None
    ) -> None:
        super().__init__(
            "Validation error",
            details={"formErrors": form_errors or [], "fieldErrors": field_errors or {}},
        )


async def send_error(
    send: Any,
    status: int,
    message: str,
    code: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer in the API.md shape from ASGI middleware (outside FastAPI's handlers)."""
    body = orjson.dumps(error_body(message, code))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def error_response(
    message: str, status: int, code: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(message, code, details), status_code=status, headers=headers)


_CODE_FOR_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "service_unavailable",
}


def _clean(msg: str) -> str:
    return re.sub(r"^Value error, ", "", msg)


def validation_details(errors: list[dict[str, Any]]) -> tuple[str, str, dict[str, Any]]:
    """Turn pydantic errors into (message, code, details) in the API.md shape."""
    field_errors: dict[str, list[str]] = {}
    form_errors: list[str] = []
    for err in errors:
        if err.get("type") == "json_invalid":
            return (
                "Malformed JSON body",
                "invalid_json",
                {"formErrors": ["Request body is not valid JSON"], "fieldErrors": {}},
            )
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        msg = _clean(str(err.get("msg", "Invalid value")))
        if err.get("type") == "missing" and not loc:
            form_errors.append("Request body is required")
        elif loc:
            field_errors.setdefault(".".join(loc), []).append(msg)
        else:
            form_errors.append(msg)
    return (
        "Validation error",
        "validation_error",
        {"formErrors": form_errors, "fieldErrors": field_errors},
    )


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves the service in the API.md shape; never a stack trace."""

    @app.exception_handler(StreamiaError)
    async def _domain(_: Request, exc: StreamiaError) -> JSONResponse:
        return error_response(exc.message, exc.status, exc.code, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, code, details = validation_details(list(exc.errors()))
        return error_response(message, 400, code, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404 and exc.detail in ("Not Found", None):
            return error_response("Endpoint not found", 404, "endpoint_not_found")
        message = exc.detail if isinstance(exc.detail, str) else "Request failed"
        code = _CODE_FOR_STATUS.get(exc.status_code, "error")
        return error_response(
            message, exc.status_code, code, headers=dict(exc.headers) if exc.headers else None
        )

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        if not is_transient(exc):
            raise exc  # a bug: the 500 handler below
        # Not a bug: a dependency is away, and the client may retry shortly.
        log.warning(
            "dependency_unavailable",
            path=request.url.path,
            error=f"{type(exc).__name__}: {exc}"[:300],
        )
        database = _from_database(exc)
        return error_response(
            "The database is unavailable, try again shortly"
            if database
            else "A dependency is unavailable, try again shortly",
            503,
            "database_unavailable" if database else "service_unavailable",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )

    # The kinds `faults.is_transient` can accept (registered by class: Exception's handler
    # runs in the outermost middleware, which re-raises after answering).
    for kind in (OSError, SQLAlchemyError, RedisError, ClientError, TransientError):
        app.add_exception_handler(kind, _unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return error_response("Internal server error", 500, "internal_error")


RETRY_AFTER_SECONDS = "2"


def _from_database(exc: BaseException) -> bool:
    """Raised by SQLAlchemy or under it (a refused connect surfaces as a bare OSError)."""
    if isinstance(exc, SQLAlchemyError):
        return True
    return any(
        "/sqlalchemy/" in frame.f_code.co_filename
        for frame, _ in traceback.walk_tb(exc.__traceback__)
    )
