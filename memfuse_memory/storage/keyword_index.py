"""Keyword search of a message store: a BM25 index per user in this process, fed from the store.

The store is the source of truth and the index a cache of it, so it is consistent after any crash
and rebuilt from the store at will. Before each search the user's index catches up with one
indexed read, :meth:`KeywordSource.keyword_feed`: the messages after the last one indexed (in
``seq`` order, which per user is commit order on both backends) and the user's count of rewrites
(deletes and edits, kept by the store itself, so a change made by any process or host is seen).
When that count moved, the user's index is built again. A search therefore sees every message
acknowledged before it started, by this process or another, and no deleted one.

Memory: at most ``budget`` messages are indexed per store; beyond it the users searched least
recently are dropped (and rebuilt when searched again).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

from memfuse_memory.models import QueryRequest
from memfuse_memory.ranking.bm25 import Bm25Index, IndexedMessage
from memfuse_memory.ranking.terms import query_stems

FEED_PAGE = 5_000  # messages read per feed call while catching up
INDEXED_MESSAGES = 2_000_000  # default budget of indexed messages per store (all users together)


@dataclass(frozen=True, slots=True)
class KeywordFeed:
    """A user's rewrite count and the next messages after a ``seq``, in ``seq`` order."""

    rewrites: int
    messages: list[IndexedMessage]


class KeywordSource(Protocol):
    """What a store gives the keyword index."""

    def keyword_feed(self, user_id: str, after_seq: int, limit: int) -> KeywordFeed: ...


@dataclass
class _UserIndex:
    index: Bm25Index = field(default_factory=Bm25Index)
    rewrites: int = -1
    lock: threading.Lock = field(default_factory=threading.Lock)


class KeywordIndexes:
    """The per-user indexes of one store, with their memory budget."""

    def __init__(self, source: KeywordSource, budget: int = INDEXED_MESSAGES) -> None:
        self.source = source
        self.budget = budget
        self.rebuilds = 0
        self._users: OrderedDict[str, _UserIndex] = OrderedDict()
        self._lock = threading.Lock()

    def search(self, request: QueryRequest, limit: int) -> dict[str, float]:
        """BM25 over every acknowledged message in the request's scope: id -> score, best first."""
        stems = query_stems(request.text)
        if not stems:
            return {}
        user = self._user(request.user_id)
        with user.lock:
            self._catch_up(request.user_id, user)
            found = user.index.top(stems, request.scope, limit)
        self._trim(request.user_id)
        return found

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
                fresh = user.rewrites == -1 and not len(user.index)  # this feed starts at the beginning
                user.rewrites = feed.rewrites
                if not fresh:
                    self.rebuilds += 1
                    user.index = Bm25Index()
                    continue
            for message in feed.messages:
                user.index.add(message)
            if len(feed.messages) < FEED_PAGE:
                return

    def _trim(self, keep: str) -> None:
        """Drop the least recently searched users while over budget (never ``keep``)."""
        with self._lock:
            total = sum(len(user.index) for user in self._users.values())
            for user_id in list(self._users):
                if total <= self.budget:
                    break
                if user_id != keep:
                    total -= len(self._users.pop(user_id).index)

    def stats(self) -> dict[str, int]:
        """Users and messages indexed in this process, and the rebuilds after a rewrite."""
        with self._lock:
            return {
                "users": len(self._users),
                "messages": sum(len(user.index) for user in self._users.values()),
                "rebuilds": self.rebuilds,
            }


class IndexedKeywords:
    """The keyword side of a store (mixed into the SQLite and PostgreSQL stores): the store
    gives :meth:`keyword_feed`, this class the index and the search."""

    keyword_budget = INDEXED_MESSAGES

    def keyword_feed(self, user_id: str, after_seq: int, limit: int) -> KeywordFeed:
        raise NotImplementedError

    @property
    def keyword_indexes(self) -> KeywordIndexes:
        indexes = self.__dict__.get("_keyword_indexes")
        if indexes is None:
            indexes = self.__dict__.setdefault("_keyword_indexes", KeywordIndexes(self, self.keyword_budget))
        return indexes

    def keyword_search(self, request: QueryRequest, limit: int) -> dict[str, float]:
        """BM25 over message contents within the request's scope: message id -> score (higher is better)."""
        return self.keyword_indexes.search(request, limit)
