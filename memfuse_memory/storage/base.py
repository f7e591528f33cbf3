"""The message-store protocol the engine depends on: durable rounds and messages, their
"stored" flag, per-user versions and keyword search. SQLite implements it (``storage.sqlite``),
and PostgreSQL (``storage.postgres``).

Round and message ids are unique per user, not across users: every lookup by id names the user
(a user id argument, or :class:`~memfuse_memory.scope.IdKey` pairs where rounds of several users
go together)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from memfuse_memory.models import IdKey, MessageFacts, QueryRequest, Round, StoredMessage
from memfuse_memory.storage.keyword_index import KeywordFeed


@runtime_checkable
class MessageStoreProtocol(Protocol):
    """What the engine, the worker and the MemoryService need of a message store.

    Every write is one transaction; a round's messages are committed (and keyword-searchable)
    before the write returns; ``user_version`` changes in the same transaction as every change
    of a user's messages or of a round's stored flag.
    """

    store_id: str

    def close(self) -> None: ...

    # writes
    def append_rounds(self, rounds: Sequence[Round]) -> None: ...

    def append_messages(self, round_: Round, messages: Sequence[StoredMessage]) -> None: ...

    def mark_stored(self, round_keys: Sequence[IdKey]) -> list[IdKey]: ...

    def delete_session(self, user_id: str, session_id: str) -> int: ...

    def delete_user(self, user_id: str) -> int: ...

    def delete_messages(self, user_id: str, message_ids: Sequence[str]) -> tuple[int, list[str], list[str]]: ...

    def update_messages(self, user_id: str, updates: Sequence[StoredMessage]) -> list[str]: ...

    # reads
    def rounds_of_messages(self, user_id: str, message_ids: Sequence[str]) -> list[str]: ...

    def pending_round_ids(self) -> set[IdKey]: ...

    def pending_rounds(self) -> list[Round]: ...

    def rounds_by_id(self, round_keys: Sequence[IdKey]) -> list[Round]: ...

    def messages_by_id(self, user_id: str, ids: Sequence[str]) -> dict[str, StoredMessage]: ...

    def message_facts(self, user_id: str, ids: Sequence[str]) -> dict[str, MessageFacts]: ...

    def existing_ids(self, user_id: str, ids: Sequence[str]) -> set[str]: ...

    def session_messages(
        self, user_id: str, session_id: str, *, pending_only: bool, limit: int | None, order: str
    ) -> list[StoredMessage]: ...

    def export(self, *, user_id: str | None = None, session_id: str | None = None) -> list[StoredMessage]: ...

    def sessions(self, user_id: str) -> list[dict[str, Any]]: ...

    def users(self) -> list[str]: ...

    def user_version(self, user_id: str) -> int: ...

    def counts(self) -> dict[str, int]: ...

    def backend_stats(self) -> dict[str, Any]: ...

    # keywords (storage.keyword_index: an in-memory index per user, fed by keyword_feed)
    def keyword_feed(self, user_id: str, after_seq: int, limit: int) -> KeywordFeed: ...

    def keyword_search(self, request: QueryRequest, limit: int, frame_weight: float = 1.0) -> dict[str, float]: ...

    def refresh_keywords(self, user_ids: Iterable[str]) -> None: ...

    def keyword_stats(self) -> dict[str, int]: ...


__all__ = ["MessageStoreProtocol"]
