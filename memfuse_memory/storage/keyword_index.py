"""Keyword search of a message store: a BM25 index per user in this process, fed from the store.

The store is the source of truth and the index a cache of it, so it is consistent after any crash
and rebuilt from the store at will. Before each search the user's index catches up with one
indexed read, :meth:`KeywordSource.keyword_feed`: the messages after the last one indexed (in
``seq`` order, which per user is commit order on both backends) and the user's count of rewrites
(deletes and edits, kept by the store itself, so a change made by any process or host is seen).
When that count moved, the user's index is built again. A search therefore sees every message
acknowledged before it started, by this process or another, and no deleted one.

Building costs ~0.1-0.3 ms per message, so a user's index is also kept as a snapshot in the
store (written in the background once a fifth of it, and at least ``SNAPSHOT_MIN_NEW`` messages,
is new): a process's first search of a user loads the snapshot and reads only what came after
it. A snapshot is taken only while its rewrite count is the store's, and the store drops it with
every delete or edit of that user, so no deleted word outlives its message on disk.

Memory: at most ``budget`` postings (one per term and message; 8 bytes each) and
:data:`INDEXED_USERS` users are held per store; beyond either, the users searched least recently
are dropped (and loaded again when searched).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from memfuse_memory.models import QueryRequest
from memfuse_memory.ranking.bm25 import Bm25Index, IndexedMessage
from memfuse_memory.ranking.terms import query_weights

log = logging.getLogger(__name__)

FEED_PAGE = 5_000  # messages read per feed call while catching up
INDEXED_POSTINGS = 25_000_000  # default budget per store (all users together): ~200 MB of postings
INDEXED_USERS = 10_000  # users with an index in memory per store (a search of an unknown user makes one)
SNAPSHOT_MIN_NEW = 2_000  # messages indexed since the last snapshot before another is taken


@dataclass(frozen=True, slots=True)
class KeywordFeed:
    """A user's rewrite count and the next messages after a ``seq``, in ``seq`` order."""

    rewrites: int
    messages: list[IndexedMessage]


@dataclass(frozen=True, slots=True)
class KeywordSnapshot:
    """A user's index as saved: the last ``seq`` and the rewrite count it was built at."""

    last_seq: int
    rewrites: int
    data: bytes


class KeywordSource(Protocol):
    """What a store gives the keyword index."""

    def keyword_feed(self, user_id: str, after_seq: int, limit: int) -> KeywordFeed: ...

    def keyword_snapshot(self, user_id: str) -> KeywordSnapshot | None: ...

    def save_keyword_snapshot(self, user_id: str, snapshot: KeywordSnapshot) -> bool: ...


@dataclass
class _UserIndex:
    index: Bm25Index = field(default_factory=Bm25Index)
    rewrites: int = -1
    saved: int = 0  # messages in the last snapshot taken or loaded
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def fresh(self) -> bool:
        return self.rewrites == -1 and not len(self.index)

    @property
    def snapshot_due(self) -> bool:
        """A fifth of the index, and at least ``SNAPSHOT_MIN_NEW`` messages, is newer than its snapshot."""
        return len(self.index) - self.saved >= max(SNAPSHOT_MIN_NEW, len(self.index) // 5)


class KeywordIndexes:
    """The per-user indexes of one store, with their memory budget."""

    def __init__(self, source: KeywordSource, budget: int = INDEXED_POSTINGS, *, snapshots: bool = True) -> None:
        self.source = source
        self.budget = budget
        self.snapshots = snapshots
        self.rebuilds = self.snapshots_loaded = self.snapshots_saved = 0
        self._users: OrderedDict[str, _UserIndex] = OrderedDict()
        self._lock = threading.Lock()
        self._saver: ThreadPoolExecutor | None = None
        self._closed = False

    def search(self, request: QueryRequest, limit: int, frame_weight: float = 1.0) -> dict[str, float]:
        """BM25 over every acknowledged message in the request's scope: id -> score, best first; the
        words of how the question is put weigh ``frame_weight`` (see ``ranking.keywords.FRAME_WORDS``)."""
        weights = query_weights(request.text, frame_weight)
        if not weights:
            return {}
        user = self._user(request.user_id)
        with user.lock:
            due = self._refresh(request.user_id, user)
            found = user.index.top(list(weights), request.scope, limit, weights)
        self._after(request.user_id, user, due)
        return found

    def refresh(self, user_ids: Iterable[str]) -> None:
        """Bring these users' indexes up to date now (the index worker calls this after a flush, so
        a search after a bulk write finds the work done and a snapshot taken)."""
        for user_id in user_ids:
            user = self._user(user_id)
            with user.lock:
                due = self._refresh(user_id, user)
            self._after(user_id, user, due)

    def snapshot_now(self, user_id: str) -> bool:
        """Bring the user's index up to date and save its snapshot in this thread (after a bulk
        import, so the next process starts from it); True when one was written."""
        user = self._user(user_id)
        with user.lock:
            self._refresh(user_id, user)
        return self._save(user_id, user, force=True)

    def _refresh(self, user_id: str, user: _UserIndex) -> bool:
        """Load (a fresh index) and catch up, holding the user's lock; True when a snapshot is due."""
        if user.fresh and self.snapshots:
            self._load(user_id, user)
        self._catch_up(user_id, user)
        return user.snapshot_due

    def _after(self, user_id: str, user: _UserIndex, due: bool) -> None:
        if due and self.snapshots:
            self._schedule_save(user_id, user)
        self._trim(user_id)

    def _user(self, user_id: str) -> _UserIndex:
        with self._lock:
            user = self._users.get(user_id)
            if user is None:
                user = self._users[user_id] = _UserIndex()
            self._users.move_to_end(user_id)
            return user

    def _catch_up(self, user_id: str, user: _UserIndex) -> None:
        """Index the messages committed since the last search; start over after a rewrite."""
        while True:
            feed = self.source.keyword_feed(user_id, user.index.last_seq, FEED_PAGE)
            if feed.rewrites != user.rewrites:
                fresh = user.fresh  # this feed starts at the beginning
                user.rewrites = feed.rewrites
                if not fresh:
                    self.rebuilds += 1
                    user.index, user.saved = Bm25Index(), 0
                    continue
            user.index.add_many(feed.messages)
            if len(feed.messages) < FEED_PAGE:
                return

    def _load(self, user_id: str, user: _UserIndex) -> None:
        """Start from the user's snapshot, if the store has one (a damaged one is ignored)."""
        snapshot = self.source.keyword_snapshot(user_id)
        if snapshot is None:
            return
        try:
            index = Bm25Index.from_bytes(snapshot.data)
        except ValueError as exc:
            log.warning("keyword index snapshot of user %r not loaded: %s", user_id, exc)
            return
        if index.last_seq == snapshot.last_seq:
            user.index, user.rewrites, user.saved = index, snapshot.rewrites, len(index)
            self.snapshots_loaded += 1

    def _schedule_save(self, user_id: str, user: _UserIndex) -> None:
        with self._lock:
            if self._closed:
                return
            if self._saver is None:
                self._saver = ThreadPoolExecutor(1, thread_name_prefix="memfuse-keyword-snapshot")
            self._saver.submit(self._save, user_id, user)

    def _save(self, user_id: str, user: _UserIndex, *, force: bool = False) -> bool:
        """Write the user's index to the store (in the background: a snapshot only saves time later)."""
        with user.lock:
            if not (force or user.snapshot_due):
                return False  # taken already by an earlier request
            snapshot = KeywordSnapshot(user.index.last_seq, user.rewrites, user.index.to_bytes())
            user.saved = len(user.index)
        try:
            if self.source.save_keyword_snapshot(user_id, snapshot):
                self.snapshots_saved += 1
                return True
        except Exception as exc:  # a failed snapshot costs a rebuild later, nothing else
            log.warning("keyword index snapshot of user %r not saved: %s", user_id, exc)
        return False

    def close(self) -> None:
        """Stop taking snapshots; wait for the one being written."""
        with self._lock:
            self._closed = True
            saver, self._saver = self._saver, None
        if saver is not None:
            saver.shutdown(wait=True, cancel_futures=True)

    def _trim(self, keep: str) -> None:
        """Drop the least recently searched users while over budget or over :data:`INDEXED_USERS`
        (never ``keep``)."""
        with self._lock:
            total = sum(user.index.posting_count for user in self._users.values())
            for user_id in list(self._users):
                if total <= self.budget and len(self._users) <= INDEXED_USERS:
                    break
                if user_id != keep:
                    total -= self._users.pop(user_id).index.posting_count

    def stats(self) -> dict[str, int]:
        """Users, messages and postings indexed in this process; rebuilds after a rewrite; snapshots."""
        with self._lock:
            return {
                "users": len(self._users),
                "messages": sum(len(user.index) for user in self._users.values()),
                "postings": sum(user.index.posting_count for user in self._users.values()),
                "rebuilds": self.rebuilds,
                "snapshots_loaded": self.snapshots_loaded,
                "snapshots_saved": self.snapshots_saved,
            }


class IndexedKeywords:
    """The keyword side of a store (mixed into the SQLite and PostgreSQL stores): the store
    gives :meth:`keyword_feed`, this class the index and the search."""

    keyword_budget = INDEXED_POSTINGS

    def keyword_feed(self, user_id: str, after_seq: int, limit: int) -> KeywordFeed:
        raise NotImplementedError

    def keyword_snapshot(self, user_id: str) -> KeywordSnapshot | None:
        raise NotImplementedError

    def save_keyword_snapshot(self, user_id: str, snapshot: KeywordSnapshot) -> bool:
        raise NotImplementedError

    def close_keyword_indexes(self) -> None:
        """Stop the snapshot writer (the store closes its connections after this)."""
        indexes = self.__dict__.get("_keyword_indexes")
        if indexes is not None:
            indexes.close()

    @property
    def keyword_indexes(self) -> KeywordIndexes:
        indexes = self.__dict__.get("_keyword_indexes")
        if indexes is None:
            indexes = self.__dict__.setdefault("_keyword_indexes", KeywordIndexes(self, self.keyword_budget))
        return indexes

    def keyword_search(self, request: QueryRequest, limit: int, frame_weight: float = 1.0) -> dict[str, float]:
        """BM25 over message contents within the request's scope: message id -> score (higher is better);
        the words of how the question is put weigh ``frame_weight``."""
        return self.keyword_indexes.search(request, limit, frame_weight)

    def keyword_stats(self) -> dict[str, int]:
        """What this process holds of the keyword index (see :meth:`KeywordIndexes.stats`)."""
        return self.keyword_indexes.stats()

    def refresh_keywords(self, user_ids: Iterable[str]) -> None:
        """Bring these users' keyword indexes up to date (see :meth:`KeywordIndexes.refresh`)."""
        self.keyword_indexes.refresh(user_ids)
