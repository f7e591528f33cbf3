"""A query with thousands of distinct words: its terms are capped, its first words still found."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from memfuse_memory.models import Round, Scope, StoredMessage
from memfuse_memory.ranking.keywords import MAX_QUERY_TERMS, query_terms
from memfuse_memory.storage.message_store import MessageStore
from tests.fakes import query_request


def test_query_terms_keep_the_first_distinct_words_up_to_the_cap() -> None:
    words = query_terms(" ".join(f"w{n} the w{n}" for n in range(10_000)))
    assert words == [f"w{n}" for n in range(MAX_QUERY_TERMS)]


def test_a_very_long_query_still_finds_its_first_words(tmp_path: Path) -> None:
    store = MessageStore(tmp_path / "m.sqlite3")
    scope = Scope(user_id="u", session_id="s")
    message = StoredMessage("m1", "user", "my cello teacher", None, datetime.now(UTC), {}, scope, "r1")
    store.append_rounds([Round("r1", scope, [message])])
    text = "cello " + " ".join(f"w{n}" for n in range(8_000))
    assert list(store.keyword_search(query_request(text, "u", 10), 10)) == ["m1"]
    store.close()
