"""How a LlamaIndex adapter connects: its pydantic settings validated, then the one connection
helper of every adapter (:class:`memfuse_memory.adapters.Connection`) and its scope checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from memfuse_memory.adapters import ConfigLike, Connection, ServiceLike
from memfuse_memory.errors import InvalidInputError

__all__ = ["ConfigLike", "Connection", "ServiceLike", "open_adapter"]


def open_adapter(
    adapter: Any,
    init: Callable[..., None],
    service: ServiceLike | None,
    config: ConfigLike | None,
    data: dict[str, Any],
) -> Connection:
    """Validate an adapter's pydantic fields with ``init``, then connect it and check its scope ids."""
    if isinstance(data.get("data_dir"), Path):
        data["data_dir"] = str(data["data_dir"])
    try:
        init(**data)
    except ValidationError as exc:
        raise InvalidInputError(f"invalid {type(adapter).__name__} settings: {exc}") from exc
    connection = Connection.open(service, config, adapter.data_dir)
    connection.check_scope(user_id=adapter.user_id, session_id=adapter.session_id, agent_id=adapter.agent_id)
    return connection
