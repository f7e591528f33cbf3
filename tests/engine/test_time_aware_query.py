"""Time words in a query, read against reference_time, favour the messages of that time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memfuse_memory import BlockingBufferService
from memfuse_memory.errors import InvalidQueryError

# 2023-05-30 is a Tuesday: "last Saturday" is 2023-05-27
REFERENCE = datetime(2023, 5, 30, 20, tzinfo=UTC)
DAYS = {"before": datetime(2023, 5, 20, 10, tzinfo=UTC), "saturday": datetime(2023, 5, 27, 10, tzinfo=UTC)}
DAYS["after"] = datetime(2023, 5, 29, 10, tzinfo=UTC)


@pytest.fixture
def dated(memory: BlockingBufferService) -> dict[str, str]:
    ids = {}
    for name, when in DAYS.items():
        reply = memory.add([{"role": "user", "content": "I went hiking with friends", "created_at": when}], name)
        ids[name] = reply["data"]["message_ids"][0]
    memory.flush_all()  # embedded: the vector ranking finds all three, with equal scores
    return ids


def _ids(memory: BlockingBufferService, text: str, **options: object) -> list[str]:
    return [row["id"] for row in memory.query(text, 10, **options)["data"]["results"]]


def test_last_saturday_ranks_that_saturday_first(memory: BlockingBufferService, dated: dict[str, str]) -> None:
    ranked = _ids(memory, "what did I do last Saturday?", reference_time=REFERENCE)
    assert ranked[0] == dated["saturday"]
    assert sorted(ranked) == sorted(dated.values())  # a boost, not a filter


def test_the_reference_time_is_part_of_the_cache_key(memory: BlockingBufferService, dated: dict[str, str]) -> None:
    assert _ids(memory, "what did I do yesterday?", reference_time=REFERENCE)[0] == dated["after"]
    assert _ids(memory, "what did I do yesterday?", reference_time="2023-05-21T12:00:00Z")[0] == dated["before"]


def test_since_and_until_still_win(memory: BlockingBufferService, dated: dict[str, str]) -> None:
    ranked = _ids(memory, "what did I do last Saturday?", reference_time=REFERENCE, since=DAYS["after"])
    assert ranked == [dated["after"]]


@pytest.mark.parametrize("bad", [True, "not a time", float("nan"), [2023]])
def test_reference_time_is_checked_like_since(memory: BlockingBufferService, bad: object) -> None:
    with pytest.raises(InvalidQueryError, match="reference_time"):
        memory.query("what did I do yesterday?", reference_time=bad)
