"""The write path: commit to the message store, then buffer, then invalidate the cache; deletes
across every store, buffer and cache; flushes. Arguments arrive validated."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from memfuse_memory.buffer.query_buffer import QueryBuffer
from memfuse_memory.buffer.write_buffer import WriteBuffer
from memfuse_memory.memory_service import MemoryService
from memfuse_memory.models import IdKey, Round, Scope, StoredMessage
from memfuse_memory.storage.base import MessageStoreProtocol
from memfuse_memory.storage.kv_store import KVStore
from memfuse_memory.worker import IndexWorker

if TYPE_CHECKING:
    from memfuse_memory.engine.components import Locks


class WritePath:
    """Durable first: a write is acknowledged by the store's commit, and the buffers follow it
    under the commit lock (lock order: :mod:`memfuse_memory.engine.components`)."""

    def __init__(
        self,
        store: MessageStoreProtocol,
        kv: KVStore,
        memory: MemoryService,
        write_buffer: WriteBuffer,
        worker: IndexWorker,
        query_buffer: QueryBuffer,
        locks: Locks,
        *,
        buffered: bool,
    ) -> None:
        self._store = store
        self._kv = kv
        self._memory = memory
        self._write_buffer = write_buffer
        self._worker = worker
        self._query_buffer = query_buffer
        self._locks = locks
        self._buffered = buffered

    def add(self, rounds: Sequence[Round]) -> None:
        """Commit rounds in one transaction, then buffer them; with buffering off, wait until stored."""
        with self._locks.commit:
            self._store.append_rounds(rounds)
            self._write_buffer.add_rounds(rounds)
        self._query_buffer.invalidate({r.scope.user_id for r in rounds})
        if not self._buffered:
            self.flush(None, rounds)

    def continue_round(self, round_: Round) -> Round | None:
        """Append a validated round's messages to its conversation's newest round while that round
        is in the RoundBuffer; None (nothing written) when it is not."""
        with self._locks.commit:
            last = self._write_buffer.last_round(round_.scope)
            if last is None:
                return None
            moved = [replace(m, round_id=last.id) for m in round_.messages]
            self._store.append_messages(last, moved)
            self._write_buffer.extend_round(last, moved)
        self._query_buffer.invalidate({round_.scope.user_id})
        return last

    def flush(self, timeout: float | None, rounds: Sequence[Round] | None = None) -> dict[str, Any]:
        """Transfer everything buffered and wait until it (or just ``rounds``) is stored."""
        started = time.perf_counter()
        target = self._write_buffer.transfer_all("flush")
        if rounds is not None:
            target &= {r.key for r in rounds}
        self._query_buffer.invalidate()
        self._worker.wait_stored(target, timeout)
        return {"flushed_rounds": len(target), "seconds": round(time.perf_counter() - started, 4)}

    def delete_session(self, scope: Scope) -> int:
        """Remove a session's vectors, messages and buffered rounds; return the messages deleted."""
        with self._locks.storage:
            self._memory.delete_vectors(scope.user_id, scope.session_id)
            with self._locks.commit:
                count = self._store.delete_session(scope.user_id, scope.session_id)
                self._write_buffer.forget(lambda s: s.user_id == scope.user_id and s.session_id == scope.session_id)
        self._query_buffer.invalidate({scope.user_id})
        return count

    def delete_user(self, user_id: str) -> int:
        """Remove every vector, message and buffered round of a user; return the messages deleted."""
        with self._locks.storage:
            self._memory.delete_vectors(user_id, None)
            with self._locks.commit:
                count = self._store.delete_user(user_id)
                self._write_buffer.forget(lambda s: s.user_id == user_id)
            self._kv.delete_user(user_id)
        self._query_buffer.invalidate({user_id})
        return count

    def update_messages(self, user_id: str, updates: Sequence[StoredMessage]) -> None:
        """Replace messages in place (one transaction); their rounds are re-indexed."""
        with self._locks.storage:
            touched = self._store.rounds_of_messages(user_id, [m.id for m in updates])
            with self._locks.commit:
                self._store.update_messages(user_id, updates)
                self._write_buffer.discard_rounds(_keys(user_id, touched))
            self._memory.delete_vectors(user_id, None, touched)
            with self._locks.commit:
                self._write_buffer.recover(self._store.rounds_by_id(sorted(_keys(user_id, touched))))
        self._query_buffer.invalidate({user_id})

    def delete_messages(self, user_id: str, message_ids: Sequence[str]) -> int:
        """Remove single messages in one transaction; rounds keeping other messages are re-indexed."""
        with self._locks.storage:
            touched = self._store.rounds_of_messages(user_id, message_ids)
            if touched:
                self._memory.delete_vectors(user_id, None, touched)
            with self._locks.commit:
                count, _emptied, partial = self._store.delete_messages(user_id, message_ids)
                self._write_buffer.discard_rounds(_keys(user_id, touched))
                self._write_buffer.recover(self._store.rounds_by_id(sorted(_keys(user_id, partial))))
        self._query_buffer.invalidate({user_id})
        return count


def _keys(user_id: str, round_ids: Sequence[str]) -> set[IdKey]:
    """The keys of one user's rounds."""
    return {IdKey(user_id, rid) for rid in round_ids}
