"""What framework adapters need of memfuse, in one small public module.

An adapter opens a :class:`Connection` (the given service's engine, or the process-wide shared
engine of a config or data directory) and uses its blocking (``sync``) and async (``aio``)
facades, the checks that reject bad ids or options before anything is written, the result
limit and the engine's token counter. Adapters import nothing else of the core's internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from memfuse_memory.blocking import BlockingBufferService
from memfuse_memory.config import LimitsConfig
from memfuse_memory.engine import Engine
from memfuse_memory.models import Round, iso
from memfuse_memory.scope import INTERNAL_PREFIX, Scope
from memfuse_memory.service import BufferService
from memfuse_memory.shared import ConfigLike, ServiceLike, resolve_service
from memfuse_memory.tokens import get_encoding
from memfuse_memory.validation import DEFAULT_SESSION, check_id, validate_query_options, validate_round

__all__ = [
    "DEFAULT_SESSION",
    "INTERNAL_PREFIX",
    "ConfigLike",
    "Connection",
    "LimitsConfig",
    "ServiceLike",
    "check_id",
    "connect",
    "iso",
]


@dataclass(frozen=True, slots=True)
class Connection:
    """One engine seen through both APIs: ``sync`` for blocking calls, ``aio`` for native async ones.

    Copies of an adapter share it (the engine is a process-wide resource: threads, stores).
    """

    engine: Engine  # the shared engine (pass it as ``service=`` to another adapter)
    sync: BlockingBufferService
    aio: BufferService

    @classmethod
    def open(
        cls,
        service: ServiceLike | None = None,
        config: ConfigLike | None = None,
        data_dir: str | Path | None = None,
    ) -> Self:
        """The given service's engine, or the process-wide shared engine of ``config`` / ``data_dir``.

        Adapters built on the same data directory share one engine, so what a chat history
        writes is visible at once to a retriever or a store.
        """
        engine = resolve_service(service, config, data_dir)
        return cls(engine, BlockingBufferService(engine), BufferService(engine))

    def __copy__(self) -> Connection:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Connection:
        return self

    @property
    def limits(self) -> LimitsConfig:
        """The configured input limits (id length, message size...)."""
        return self.engine.config.limits

    @property
    def max_results(self) -> int:
        """The most results one query returns (``query.max_size``)."""
        return self.engine.config.buffer.query.max_size

    def check_id(self, value: Any, what: str, error: type[Exception] | None = None) -> str:
        """``value`` if the engine accepts it as an id, else the engine's error (or ``error``)."""
        if error is None:
            return check_id(value, what, self.limits)
        return check_id(value, what, self.limits, error)

    def check_scope(self, *, user_id: Any, session_id: Any = None, agent_id: Any = None) -> None:
        """Raise InvalidScopeError now for an id the engine would reject on the first call."""
        check_id(user_id, "user_id", self.limits)
        if session_id is not None:
            check_id(session_id, "session_id", self.limits)
        if agent_id is not None:
            check_id(agent_id, "agent_id", self.limits)

    def check_round(self, messages: Any, *, user_id: str, session_id: str, agent_id: str | None = None) -> Round:
        """Validate a round as ``add`` would, without writing it (raises InvalidMessageError)."""
        scope = Scope(user_id=check_id(user_id, "user_id", self.limits), session_id=session_id, agent_id=agent_id)
        return validate_round(messages, scope, self.limits)

    def check_query_options(self, top_k: Any, **options: Any) -> None:
        """Raise InvalidQueryError / InvalidScopeError now for query options ``query`` would reject."""
        validate_query_options(top_k, limits=self.limits, defaults=self.engine.config.buffer.query, **options)

    def count_message(self, text: str) -> int:
        """Tokens of one chat message with this text, by the engine's tiktoken counter."""
        return self.engine.counter.count_messages([text])

    def count_text(self, text: str) -> int:
        """Tokens of a text, by the engine's tiktoken counter."""
        return self.engine.counter.count_text(text)

    def tokenize(self, text: str) -> list[int]:
        """The engine's tiktoken encoding of ``text`` (what ``tokenizer_fn`` callers expect)."""
        return get_encoding(self.engine.counter.model).encode_ordinary(text)


def connect(
    service: ServiceLike | None = None,
    config: ConfigLike | None = None,
    data_dir: str | Path | None = None,
) -> Connection:
    """The connection helper of every adapter: see :meth:`Connection.open`."""
    return Connection.open(service, config, data_dir)
