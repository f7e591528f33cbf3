"""The gateway's effective settings: the config's ``server`` section, the command line and the environment."""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from memfuse_memory.config import MemFuseConfig
from memfuse_memory.errors import ConfigError

ADMIN_KEY_ENV = "MEMFUSE_ADMIN_API_KEY"
MIN_KEY_CHARS = 16


def hash_key(key: str) -> str:
    """How keys are stored and compared: SHA-256 (keys are long random strings, so no salt is needed)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Everything the app and the runner need, resolved once at start."""

    host: str
    port: int
    require_api_key: bool
    admin_key_hash: str | None
    max_body_bytes: int
    max_list_limit: int
    registry_path: Path
    keep_alive_seconds: float
    shutdown_timeout_seconds: float
    telemetry: bool = False


def resolve_settings(
    config: MemFuseConfig,
    *,
    host: str | None = None,
    port: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServerSettings:
    """Merge config, command line and environment; refuse to serve a public interface without keys."""
    section = config.server
    env = os.environ if environ is None else environ
    host = host or section.host
    port = section.port if port is None else port
    if not 1 <= port <= 65535:
        raise ConfigError(f"port must be between 1 and 65535, got {port}")
    admin_key = env.get(ADMIN_KEY_ENV) or section.admin_api_key
    if admin_key is not None and len(admin_key) < MIN_KEY_CHARS:
        raise ConfigError(f"the admin API key must have at least {MIN_KEY_CHARS} characters")
    require = (not is_loopback(host)) if section.require_api_key is None else section.require_api_key
    if not require and not is_loopback(host) and not section.allow_public_without_key:
        raise ConfigError(
            f"refusing to serve {host} without API keys: set server.require_api_key true, or "
            "server.allow_public_without_key true to run open on purpose"
        )
    if require and admin_key is None:
        raise ConfigError(f"server.require_api_key needs an admin key: set {ADMIN_KEY_ENV} or server.admin_api_key")
    return ServerSettings(
        host=host,
        port=port,
        require_api_key=require,
        admin_key_hash=None if admin_key is None else hash_key(admin_key),
        max_body_bytes=section.max_body_bytes,
        max_list_limit=section.max_list_limit,
        registry_path=Path(config.storage.data_dir) / section.registry_file,
        keep_alive_seconds=section.keep_alive_seconds,
        shutdown_timeout_seconds=section.shutdown_timeout_seconds,
        telemetry=section.telemetry,
    )
