"""The JSON envelope every answer wears, the handlers that put errors in it, and the request guard.

Success: ``{"status": "success", "code", "data", "message", "errors": null}``; error: ``{"status":
"error", "code", "data": null, "message", "errors": [{"field", "message"}]}``. No framework default
body, HTML or empty body ever leaves the API routes (the MemFuse SDK parses every answer as JSON).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memfuse_memory.errors import (
    DuplicateMessageError,
    InvalidInputError,
    MemFuseError,
    ServiceClosedError,
    StorageUnavailableError,
)
from memfuse_memory.server.errors import ApiError

log = logging.getLogger(__name__)

_REASONS = {400: "bad request", 401: "unauthorized", 403: "forbidden", 404: "not found", 405: "method not allowed"}


class EnvelopeResponse(JSONResponse):
    """A JSON answer encoded by orjson (a query answer in a twentieth of ``json.dumps``' time); a value orjson
    refuses (an integer beyond 64 bits in stored metadata) falls back to ``json``."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:
            return super().render(content)


def ok(data: dict[str, Any], message: str = "ok", code: int = 200) -> JSONResponse:
    """A success answer."""
    body = {"status": "success", "code": code, "data": data, "message": message, "errors": None}
    return EnvelopeResponse(body, status_code=code)


def error_body(code: int, message: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "status": "error",
        "code": code,
        "data": None,
        "message": message,
        "errors": errors or [{"field": None, "message": message}],
    }


def fail(code: int, message: str, errors: list[dict[str, Any]] | None = None, **kwargs: Any) -> JSONResponse:
    """An error answer."""
    return EnvelopeResponse(error_body(code, message, errors), status_code=code, **kwargs)


def status_of(error: MemFuseError) -> int:
    """The HTTP status of a library or gateway error."""
    if isinstance(error, ApiError):
        return error.status
    if isinstance(error, DuplicateMessageError):
        return 409
    if isinstance(error, InvalidInputError):
        return 400
    if isinstance(error, ServiceClosedError | StorageUnavailableError):
        return 503
    return 500


def _field(location: tuple[Any, ...]) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(location[0] if location else "body")


async def _memfuse_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MemFuseError)
    code = status_of(exc)
    if code >= 500:
        log.error("request failed: %s", exc, exc_info=exc)
    field = exc.field if isinstance(exc, ApiError) else None
    return fail(code, str(exc), [{"field": field, "message": str(exc)}])


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid"))} for e in exc.errors()]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return fail(422, f"invalid request: {summary}", errors)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else _REASONS.get(exc.status_code, "error")
    return fail(exc.status_code, message, headers=dict(exc.headers or {}))


def install_handlers(app: FastAPI) -> None:
    """Route every error the framework or the library raises into the envelope."""
    app.add_exception_handler(MemFuseError, _memfuse_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)


class RequestGuard:
    """ASGI middleware: refuses bodies over ``max_body_bytes`` with a 413 before any route runs, and turns
    any exception that escaped the handlers into a 500 envelope (never a bare framework page)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await self._read_body(scope, receive)
        if body is None:
            await self._send_json(send, 413, f"request body larger than {self.max_body_bytes} bytes")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, replay, tracking_send)
        except Exception as exc:
            log.error("unhandled error on %s %s", scope.get("method"), scope.get("path"), exc_info=exc)
            if not started:
                await self._send_json(send, 500, "internal server error")

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    async def _send_json(send: Send, code: int, message: str) -> None:
        payload = json.dumps(error_body(code, message)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": code, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
