"""Too-common query words are dropped before BM25: same ranking, far fewer documents scored."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memfuse_memory.models import Round, Scope, StoredMessage
from memfuse_memory.ranking.keywords import informative
from memfuse_memory.storage.message_store import MessageStore
from memfuse_memory.storage.sqlite import keywords as sqlite_keywords
from tests.fakes import query_request


def test_common_word_dropped_only_in_large_stores() -> None:
    stems = {"note": ["note"], "cello": ["cello"]}
    assert informative(["note", "cello"], stems, {"note": 900, "cello": 3}, 1000, 500) == ["cello"]
    assert informative(["note", "cello"], stems, {"note": 90, "cello": 3}, 100, 500) == ["note", "cello"]
    assert informative(["note", "cello"], stems, {"note": 900, "cello": 3}, 3000, 500) == ["note", "cello"]


def test_all_words_kept_when_the_rest_would_match_nothing() -> None:
    stems = {"note": ["note"], "zebra": ["zebra"]}
    assert informative(["note", "zebra"], stems, {"note": 900}, 1000, 500) == ["note", "zebra"]


def test_a_word_is_dropped_only_when_every_stem_is_common() -> None:
    stems = {"foo_bar": ["foo", "bar"], "cello": ["cello"]}
    freq = {"foo": 900, "bar": 2, "cello": 1}
    assert informative(["foo_bar", "cello"], stems, freq, 1000, 500) == ["foo_bar", "cello"]


@given(
    st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), unique=True, min_size=1),
    st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e"]), st.integers(0, 2000)),
    st.integers(0, 2000),
)
def test_kept_words_are_an_ordered_nonempty_subset(words: list[str], freq: dict[str, int], total: int) -> None:
    kept = informative(words, {w: [w] for w in words}, freq, total, 500)
    assert kept and [w for w in words if w in kept] == kept


def _round(n: int, content: str) -> Round:
    scope = Scope(user_id="u", session_id="s")
    message = StoredMessage(
        id=f"m{n}",
        role="user",
        content=content,
        name=None,
        created_at=datetime.now(UTC),
        metadata={},
        scope=scope,
        round_id=f"r{n}",
    )
    return Round(id=f"r{n}", scope=scope, messages=[message])


@pytest.fixture
def big_store(tmp_path: Path) -> MessageStore:
    store = MessageStore(tmp_path / "m.sqlite3")
    rounds = [
        _round(n, f"Note {n}: we talked about {'the cello lesson' if n % 97 == 0 else 'the weather'} today")
        for n in range(1200)
    ]
    store.append_rounds(rounds)
    return store


def test_stems_come_from_the_index_tokenizer(big_store: MessageStore) -> None:
    stems, freq, total = big_store.term_stats(["talked", "cello", "Élan"])
    assert stems == {"talked": ["talk"], "cello": ["cello"], "Élan": ["elan"]}
    assert freq == {"talk": 1200, "cello": 13} and total == 1200


def test_pruned_search_ranks_like_the_full_one(big_store: MessageStore, monkeypatch: pytest.MonkeyPatch) -> None:
    request = query_request("what did we note about the cello?", "u", 10)
    pruned = big_store.keyword_search(request, 20)
    monkeypatch.setattr(sqlite_keywords, "COMMON_TERM_MIN_DOCS", 10**9)
    full = big_store.keyword_search(request, 20)
    assert list(pruned) == [f"m{n}" for n in range(0, 1200, 97)]
    assert list(pruned) == list(full)[: len(pruned)]
