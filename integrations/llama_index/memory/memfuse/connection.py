"""The engine an adapter talks to, with its blocking and async facades and the scope checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from memfuse_memory.errors import InvalidInputError
from memfuse_memory.models import check_id
from memfuse_memory.shared import ConfigLike, ServiceLike, Services
from memfuse_memory.tokens import get_encoding

__all__ = ["ConfigLike", "Connection", "ServiceLike"]


@dataclass(frozen=True, slots=True)
class Connection(Services):
    """The shared engine's two APIs, plus the scope checks and token counting the adapters need."""

    def __copy__(self) -> Connection:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Connection:
        # the engine is a process-wide resource (threads, stores): copies of an adapter share it
        return self

    def check_scope(self, *, user_id: str, session_id: str | None = None, agent_id: str | None = None) -> None:
        """Raise InvalidScopeError now for an id the engine would reject on the first call."""
        limits = self.engine.config.limits
        check_id(user_id, "user_id", limits)
        if session_id is not None:
            check_id(session_id, "session_id", limits)
        if agent_id is not None:
            check_id(agent_id, "agent_id", limits)

    def count_message(self, text: str) -> int:
        """Tokens of one chat message with this text, by the engine's tiktoken counter."""
        return self.engine.counter.count_messages([text])

    def tokenize(self, text: str) -> list[int]:
        """The engine's tiktoken encoding of ``text`` (what ``tokenizer_fn`` callers expect)."""
        return get_encoding(self.engine.counter.model).encode_ordinary(text)


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
