"""HTTP-level errors of the gateway, part of the one hierarchy rooted in ``MemFuseError``.

::

    MemFuseError
     └── ApiError                 an HTTP answer other than success (status, message, field)
          ├── BadRequestError     400: a query parameter or body value is rejected
          ├── UnauthorizedError   401: no key, or an unknown, revoked or expired key
          ├── ForbiddenError      403: the key may not touch this user, lacks a permission, or needs the admin key
          ├── NotFoundError       404: no user, agent, session, message or knowledge item with this id/name
          └── ConflictError       409: the name is already taken
"""

from __future__ import annotations

from memfuse_memory.errors import MemFuseError


class ApiError(MemFuseError):
    """An error answer: its HTTP status, a message and optionally the request field at fault."""

    status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BadRequestError(ApiError):
    status = 400


class UnauthorizedError(ApiError):
    status = 401


class ForbiddenError(ApiError):
    status = 403


class NotFoundError(ApiError):
    status = 404


class ConflictError(ApiError):
    status = 409
