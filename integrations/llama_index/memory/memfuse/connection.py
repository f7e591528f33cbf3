"""The engine an adapter talks to, with its blocking and async facades and the scope checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memfuse_memory.blocking import BlockingBufferService
from memfuse_memory.config import MemFuseConfig
from memfuse_memory.engine import Engine
from memfuse_memory.models import check_id
from memfuse_memory.service import BufferService
from memfuse_memory.shared import resolve_service
from memfuse_memory.tokens import get_encoding

ServiceLike = BufferService | BlockingBufferService | Engine
ConfigLike = str | Path | MemFuseConfig | dict[str, Any]


@dataclass(frozen=True, slots=True)
class Connection:
    """One engine seen through both APIs: ``sync`` for blocking calls, ``aio`` for native async ones."""

    engine: Engine
    sync: BlockingBufferService
    aio: BufferService

    @classmethod
    def open(
        cls,
        service: ServiceLike | None = None,
        config: ConfigLike | None = None,
        data_dir: str | Path | None = None,
    ) -> Connection:
        """The given service's engine, or the process-wide shared engine of ``config`` / ``data_dir``."""
        engine = resolve_service(service=service, config=config, data_dir=data_dir)
        return cls(engine=engine, sync=BlockingBufferService(engine), aio=BufferService(engine))

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
