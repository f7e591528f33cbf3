"""API keys: who is calling, and whether they may touch a user's data.

A request carries ``Authorization: Bearer <key>`` (or ``X-API-Key``). The admin key may do anything;
a per-user key reaches only its own user (403 otherwise), and only as far as its ``permissions`` go:
``read`` (every GET, reading messages and knowledge by id, the queries) and ``write`` (adding,
changing and deleting anything, and managing the user's keys). A key created without ``permissions``
has both. Without a key the request is open when ``require_api_key`` is off, refused with 401 when it
is on. Keys are stored as SHA-256 hashes and shown once, when created.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Request

from memfuse_memory.server.errors import ForbiddenError, UnauthorizedError
from memfuse_memory.server.registry import Registry
from memfuse_memory.server.settings import ServerSettings, hash_key

KEY_PREFIX = "mfk_"
READ, WRITE = "read", "write"
PERMISSIONS = (READ, WRITE)
"""Everything a key may be granted; ``permissions: {"read": true}`` makes a read-only key."""
ALL = frozenset(PERMISSIONS)


def granted(permissions: Mapping[str, Any] | None) -> frozenset[str]:
    """The permissions a stored key holds: all of them when it was created without any, else those set to
    true (a value that is not ``true`` grants nothing)."""
    if permissions is None:
        return ALL
    return frozenset(name for name in PERMISSIONS if permissions.get(name) is True)


def new_key() -> str:
    """A fresh random key (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: ``admin``, ``user`` (bound to ``user_id``, holding ``permissions``) or ``open`` (no key,
    keys not required)."""

    kind: str
    user_id: str | None = None
    permissions: frozenset[str] = ALL

    @property
    def full_access(self) -> bool:
        return self.kind in ("admin", "open")

    @property
    def scope(self) -> str | None:
        """The one user this caller is bound to; None when it may reach every user."""
        return None if self.full_access else self.user_id

    def require_admin(self, what: str) -> None:
        if not self.full_access:
            raise ForbiddenError(f"{what} needs the admin key")

    def require(self, permission: str) -> None:
        """403 naming the missing permission unless the caller holds it."""
        if permission not in self.permissions:
            held = ", ".join(sorted(self.permissions)) or "none"
            raise ForbiddenError(
                f"this API key lacks the {permission!r} permission (it holds: {held})", field="permissions"
            )

    def require_user(self, user_id: str) -> None:
        """403 unless the caller may touch ``user_id``'s data."""
        if not self.full_access and user_id != self.user_id:
            raise ForbiddenError("this API key belongs to another user")


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise UnauthorizedError("the Authorization header must be 'Bearer <key>'", field="Authorization")
        return value.strip()
    return request.headers.get("x-api-key") or None


def _expired(expires_at: str | None) -> bool:
    if expires_at is None:
        return False
    moment = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment <= datetime.now(UTC)


def authenticate(key: str | None, settings: ServerSettings, registry: Registry) -> Principal:
    """Resolve the caller from its key; 401 for a missing (when required), unknown, revoked or expired key."""
    if key is None:
        if settings.require_api_key:
            raise UnauthorizedError("an API key is required: send 'Authorization: Bearer <key>'")
        return Principal("open")
    digest = hash_key(key)
    if settings.admin_key_hash is not None and hmac.compare_digest(digest, settings.admin_key_hash):
        return Principal("admin")
    record = registry.key_by_hash(digest)
    if record is None or record.revoked_at is not None or _expired(record.expires_at):
        raise UnauthorizedError("unknown, revoked or expired API key")
    return Principal("user", record.user_id, granted(record.permissions))
