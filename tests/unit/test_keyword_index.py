"""The in-memory keyword index: BM25 as defined, FTS5's terms, scope masks, catching up with the
store (another process's adds, deletes and edits), the memory budget."""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memfuse_memory.models import Round, Scope, StoredMessage
from memfuse_memory.ranking.bm25 import COMMON_MIN_DOCS, K1, MIN_IDF, B, Bm25Index, IndexedMessage
from memfuse_memory.ranking.terms import document_terms, query_stems, query_weights, stem
from memfuse_memory.scope import ScopeFilter
from memfuse_memory.storage import keyword_index
from memfuse_memory.storage.keyword_index import KeywordFeed, KeywordIndexes
from memfuse_memory.storage.message_store import MessageStore
from tests.fakes import query_request

WORDS = ["cello", "kayak", "violet", "tandem", "river", "lesson", "garden", "piano", "the", "and"]


def message(seq: int, content: str, session: str = "s", agent: str | None = None, created: int = 0) -> IndexedMessage:
    return IndexedMessage(seq, f"m{seq}", session, agent, created, content)


def reference_bm25(docs: list[str], query: str) -> dict[str, float]:
    """BM25 straight from its definition (every matching document, FTS5's idf)."""
    terms = [document_terms(doc) for doc in docs]
    avgdl = sum(length for _, length in terms) / len(docs)
    scores: dict[str, float] = {}
    for term in query_stems(query):
        df = sum(term in counts for counts, _ in terms)
        if not df:
            continue
        idf = max(math.log((len(docs) - df + 0.5) / (df + 0.5)), MIN_IDF)
        for n, (counts, length) in enumerate(terms):
            if term in counts:
                tf = counts[term]
                scores[f"m{n}"] = scores.get(f"m{n}", 0.0) + idf * tf * (K1 + 1) / (
                    tf + K1 * (1 - B + B * length / avgdl)
                )
    return scores


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(" ".join), min_size=1, max_size=40),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join),
    st.integers(1, 50),
)
def test_scores_and_order_are_bm25_as_defined(docs: list[str], query: str, limit: int) -> None:
    index = Bm25Index()
    for n, doc in enumerate(docs):
        index.add(message(n, doc))
    found = index.top(query_stems(query), ScopeFilter("u"), limit)
    expected = reference_bm25(docs, query)
    assert set(found) <= set(expected) and len(found) == min(limit, len(expected))
    for mid, score in found.items():
        assert score == pytest.approx(expected[mid], rel=1e-4)
    scores = list(found.values())
    assert scores == sorted(scores, reverse=True)
    if len(found) < len(expected):  # nothing left out beats what was kept
        assert max(v for k, v in expected.items() if k not in found) <= min(scores) * (1 + 1e-4)


def test_ties_put_the_newer_message_first() -> None:
    index = Bm25Index()
    for n in range(3):
        index.add(message(n, "violet kayak"))
    assert list(index.top(["violet"], ScopeFilter("u"), 3)) == ["m2", "m1", "m0"]


def test_common_terms_are_skipped_only_in_large_indexes() -> None:
    index = Bm25Index()
    for n in range(COMMON_MIN_DOCS + 100):
        index.add(message(n, f"note {n} on the {'cello lesson' if n % 97 == 0 else 'weather'}"))
    found = index.top(query_stems("a note about the cello"), ScopeFilter("u"), 20)
    assert list(found) == [f"m{n}" for n in range(0, COMMON_MIN_DOCS + 100, 97)][::-1], "note is in every message"
    assert list(index.top(query_stems("note"), ScopeFilter("u"), 3)) == ["m599", "m598", "m597"], "all common: kept"
    small = Bm25Index()
    for n in range(10):
        small.add(message(n, "note" if n else "note cello"))
    assert len(small.top(query_stems("note cello"), ScopeFilter("u"), 20)) == 10


def test_scope_masks() -> None:
    index = Bm25Index()
    index.add(message(1, "violet kayak", session="s1", agent="a", created=100))
    index.add(message(2, "violet kayak", session="s2", agent=None, created=200))
    index.add(message(3, "violet kayak", session="~catalog", created=300))
    stems = ["violet"]
    assert set(index.top(stems, ScopeFilter("u"), 10)) == {"m1", "m2"}, "internal sessions left out"
    assert set(index.top(stems, ScopeFilter("u", session_id="~catalog"), 10)) == {"m3"}, "unless named"
    assert set(index.top(stems, ScopeFilter("u", session_id="s2"), 10)) == {"m2"}
    assert set(index.top(stems, ScopeFilter("u", agent_id="a"), 10)) == {"m1"}
    assert set(index.top(stems, ScopeFilter("u", since=150, until=250), 10)) == {"m2"}
    assert index.top(stems, ScopeFilter("u", session_id="nowhere"), 10) == {}
    with pytest.raises(ValueError, match="not after"):
        index.add(message(2, "again"))


def test_terms_are_the_fts5_porter_terms() -> None:
    words = [
        "Talked",
        "running",
        "caresses",
        "ponies",
        "Élan",
        "naïve",
        "cats",
        "is",
        "as",
        "Über",
        "relational",
        "conditional",
        "2024",
        "x1",
        "dogs",
    ]
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5 (c, tokenize = 'porter unicode61 remove_diacritics 2')")
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab (t, instance)")
    conn.executemany("INSERT INTO t (rowid, c) VALUES (?, ?)", list(enumerate(words)))
    fts5 = dict(conn.execute("SELECT doc, term FROM v").fetchall())
    ours = {n: stem(word.lower()) for n, word in enumerate(words)}
    assert ours == fts5
    counts, length = document_terms("The cats and the cat's toys")
    assert counts == Counter({"cat": 2, "s": 1, "toi": 1}) and length == 7


class FakeSource:
    """A message table in a list, with a rewrite count, that records the feed calls."""

    def __init__(self) -> None:
        self.rows: list[IndexedMessage] = []
        self.rewrites = 0
        self.calls: list[int] = []

    def keyword_feed(self, user_id: str, after_seq: int, limit: int) -> KeywordFeed:
        self.calls.append(after_seq)
        return KeywordFeed(self.rewrites, [m for m in self.rows if m.seq > after_seq][:limit])

    def keyword_snapshot(self, user_id: str) -> keyword_index.KeywordSnapshot | None:
        return None

    def save_keyword_snapshot(self, user_id: str, snapshot: keyword_index.KeywordSnapshot) -> bool:
        return False


def test_the_index_catches_up_and_starts_over_after_a_rewrite() -> None:
    source = FakeSource()
    indexes = KeywordIndexes(source)
    source.rows = [message(1, "violet kayak"), message(2, "green tandem")]
    assert list(indexes.search(query_request("kayak", "u"), 5)) == ["m1"]
    source.rows.append(message(5, "a kayak on the river"))
    assert set(indexes.search(query_request("kayak", "u"), 5)) == {"m1", "m5"}
    assert source.calls == [-1, 2], "the second search read only what came after seq 2"
    source.rows = [m for m in source.rows if m.seq != 1]
    source.rewrites += 1
    assert list(indexes.search(query_request("kayak", "u"), 5)) == ["m5"]
    stats = indexes.stats()
    assert (stats["users"], stats["messages"], stats["postings"], stats["rebuilds"]) == (1, 2, 4, 1)


def test_the_budget_drops_the_least_recently_searched_user() -> None:
    source = FakeSource()
    source.rows = [message(n, f"kayak {n}") for n in range(1, 31)]
    indexes = KeywordIndexes(source, budget=50)
    for user in ("a", "b", "c"):
        indexes.search(query_request("kayak", user), 5)
    assert indexes.stats()["users"] == 1 and indexes.stats()["messages"] == 30
    indexes.search(query_request("kayak", "a"), 5)
    assert indexes.stats()["users"] == 1, "c went, a came back (rebuilt from the store)"


def test_searches_of_many_unknown_users_keep_a_bounded_number_of_indexes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyword_index, "INDEXED_USERS", 5)
    indexes = KeywordIndexes(FakeSource())
    for n in range(50):
        indexes.search(query_request("kayak", f"nobody{n}"), 5)
    assert indexes.stats()["users"] == 5


def _round(rid: str, user: str, session: str, *texts: str) -> Round:
    scope = Scope(user_id=user, session_id=session)
    now = datetime.now(UTC)
    messages = [StoredMessage(f"{rid}-{n}", "user", t, None, now, {}, scope, rid) for n, t in enumerate(texts)]
    return Round(rid, scope, messages)


def test_two_stores_on_one_file_see_each_others_adds_deletes_and_edits(tmp_path: Path) -> None:
    ours, theirs = MessageStore(tmp_path / "m.sqlite3"), MessageStore(tmp_path / "m.sqlite3")
    try:
        ours.append_rounds([_round("r1", "u", "s1", "violet kayak", "green tandem")])
        assert list(ours.keyword_search(query_request("kayak", "u"), 5)) == ["r1-0"]
        theirs.append_rounds([_round("r2", "u", "s2", "a kayak trip")])
        assert set(ours.keyword_search(query_request("kayak", "u"), 5)) == {"r1-0", "r2-0"}, "read their add"
        theirs.delete_messages("u", ["r1-0"])
        assert list(ours.keyword_search(query_request("kayak", "u"), 5)) == ["r2-0"], "their delete seen"
        edited = ours.messages_by_id("u", ["r1-1"])["r1-1"]
        theirs.update_messages("u", [dataclasses.replace(edited, content="a red kayak")])
        assert set(ours.keyword_search(query_request("kayak", "u"), 5)) == {"r1-1", "r2-0"}, "their edit seen"
        assert ours.keyword_search(query_request("tandem", "u"), 5) == {}
        theirs.delete_session("u", "s2")  # messages go by the rounds' cascade
        assert list(ours.keyword_search(query_request("kayak", "u"), 5)) == ["r1-1"]
        assert ours.keyword_search(query_request("kayak", "someone else"), 5) == {}
        assert ours.keyword_indexes.stats()["rebuilds"] == 3
    finally:
        ours.close()
        theirs.close()


def test_a_snapshot_round_trips_the_index() -> None:
    index = Bm25Index()
    index.add_many(
        [message(n, f"violet kayak {n}", session=f"s{n % 3}", agent="a" if n % 2 else None) for n in range(50)]
    )
    copy = Bm25Index.from_bytes(index.to_bytes())
    for scope in (ScopeFilter("u"), ScopeFilter("u", session_id="s1"), ScopeFilter("u", agent_id="a", since=10)):
        assert copy.top(["kayak", "7"], scope, 10) == index.top(["kayak", "7"], scope, 10)
    assert (len(copy), copy.last_seq, copy.posting_count) == (50, 49, index.posting_count)
    copy.add(message(50, "kayak kayak kayak"))
    assert next(iter(copy.top(["kayak"], ScopeFilter("u"), 1))) == "m50"
    with pytest.raises(ValueError, match="not a keyword index snapshot"):
        Bm25Index.from_bytes(b"garbage")


def test_a_new_process_starts_from_the_snapshot_and_a_delete_drops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyword_index, "SNAPSHOT_MIN_NEW", 10)
    path = tmp_path / "m.sqlite3"
    first = MessageStore(path)
    first.append_rounds([_round(f"r{n}", "u", "s", f"violet kayak {n}", f"green tandem {n}") for n in range(20)])
    expected = first.keyword_search(query_request("kayak 7", "u", 10), 10)
    first.close()  # waits for the snapshot being written
    (kept,) = sqlite3.connect(path).execute("SELECT count(*) FROM keyword_snapshots").fetchone()
    assert kept == 1 and first.keyword_indexes.stats()["snapshots_saved"] == 1
    second = MessageStore(path)
    try:
        second.append_rounds([_round("late", "u", "s", "a late kayak 7")])
        found = second.keyword_search(query_request("kayak 7", "u", 10), 10)
        assert second.keyword_indexes.stats()["snapshots_loaded"] == 1
        assert "late-0" in found and {k: v for k, v in found.items() if k != "late-0"}.keys() <= expected.keys()
        stale = keyword_index.KeywordSnapshot(10**6, 0, b"stale")
        second.delete_messages("u", ["r3-0"])
        (left,) = sqlite3.connect(path).execute("SELECT count(*) FROM keyword_snapshots").fetchone()
        assert left == 0, "the delete dropped the snapshot in its own transaction"
        assert not second.save_keyword_snapshot("u", stale), "built before the delete: refused"
    finally:
        second.close()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(" ".join), min_size=1, max_size=40),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join),
    st.dictionaries(st.sampled_from(WORDS).map(stem), st.floats(0, 1), max_size=4),
)
def test_a_term_weight_scales_that_terms_part_of_each_score(
    docs: list[str], query: str, weights: dict[str, float]
) -> None:
    index = Bm25Index()
    for n, doc in enumerate(docs):
        index.add(message(n, doc))
    stems = query_stems(query)
    plain = index.top(stems, ScopeFilter("u"), 100)
    weighed = index.top(stems, ScopeFilter("u"), 100, weights)
    assert set(weighed) <= set(plain)
    expected: dict[str, float] = {}
    for term in stems:
        for mid, part in reference_bm25(docs, term).items():
            expected[mid] = expected.get(mid, 0.0) + weights.get(term, 1.0) * part
    for mid, score in weighed.items():
        assert score == pytest.approx(expected[mid], rel=1e-4, abs=1e-9)
        assert score <= plain[mid] * (1 + 1e-6), "a weight of at most 1 never raises a score"
    assert index.top(stems, ScopeFilter("u"), 100, dict.fromkeys(stems, 1.0)) == plain


def test_question_frame_words_weigh_less_in_a_query() -> None:
    assert query_weights("How many days ago did I adopt the kitten?", 0.6) == {
        "mani": 0.6,
        "dai": 0.6,
        "ago": 0.6,
        "adopt": 1.0,
        "kitten": 1.0,
    }
    assert set(query_weights("our previous chats, I was wondering", 0.5).values()) == {0.5}
    assert query_weights("How many days ago did I adopt the kitten?") == dict.fromkeys(
        query_stems("How many days ago did I adopt the kitten?"), 1.0
    )


def test_frame_words_no_longer_outrank_what_the_question_is_about() -> None:
    index = Bm25Index()
    index.add(message(0, "a rescue kitten, adopted from the shelter"))
    index.add(message(1, "how many days, how many weeks, how many months: counting days"))
    for n in range(2, 12):
        index.add(message(n, f"note {n} about the garden"))
    weights = query_weights("how many days ago did I adopt my kitten", 0.3)
    assert next(iter(index.top(list(weights), ScopeFilter("u"), 2, weights))) == "m0"
    assert next(iter(index.top(list(weights), ScopeFilter("u"), 2))) == "m1"
