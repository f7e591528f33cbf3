"""The time resolver over a table of expressions and reference times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memfuse_memory.ranking.time_expressions import mentions_time, resolve

# 2023-05-30 is a Tuesday (LongMemEval's question dates look like this one)
REF = datetime(2023, 5, 30, 23, 40, tzinfo=UTC)


def d(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


WINDOWS = [
    ("what did I do yesterday?", REF, d(2023, 5, 29), d(2023, 5, 30)),
    ("what did I eat today", REF, d(2023, 5, 30), d(2023, 5, 31)),
    ("what did I do last Saturday?", REF, d(2023, 5, 27), d(2023, 5, 28)),
    ("on Tuesday I went out", REF, d(2023, 5, 23), d(2023, 5, 24)),
    ("what did I do last Saturday?", d(2023, 6, 3), d(2023, 5, 27), d(2023, 5, 28)),
    ("two days ago I bought a lamp", REF, d(2023, 5, 28), d(2023, 5, 29)),
    ("what did I buy 3 days ago", REF, d(2023, 5, 27), d(2023, 5, 28)),
    ("a week ago I met Anna", REF, d(2023, 5, 20), d(2023, 5, 27)),
    ("a month ago I moved", REF, d(2023, 4, 15), d(2023, 5, 16)),
    ("what happened last week", REF, d(2023, 5, 22), d(2023, 5, 29)),
    ("what did I do last weekend", REF, d(2023, 5, 27), d(2023, 5, 29)),
    ("what did I do this week", REF, d(2023, 5, 29), d(2023, 6, 5)),
    ("books I read last month", REF, d(2023, 4, 1), d(2023, 5, 1)),
    ("books I read last month", d(2023, 1, 10), d(2022, 12, 1), d(2023, 1, 1)),
    ("trips of last year", REF, d(2022, 1, 1), d(2023, 1, 1)),
    ("what did I buy in May 2023", REF, d(2023, 5, 1), d(2023, 6, 1)),
    ("what did I buy in March", REF, d(2023, 3, 1), d(2023, 4, 1)),
    ("what did I buy in December", REF, d(2022, 12, 1), d(2023, 1, 1)),
    ("the concert on March 3rd", REF, d(2023, 3, 3), d(2023, 3, 4)),
    ("the concert on 3 March 2022", REF, d(2022, 3, 3), d(2022, 3, 4)),
    ("the party on July 4", REF, d(2022, 7, 4), d(2022, 7, 5)),
    ("the dinner of Feb. 14, 2023", REF, d(2023, 2, 14), d(2023, 2, 15)),
    ("what happened on 2023/05/20", REF, d(2023, 5, 20), d(2023, 5, 21)),
    ("what happened on 2023-05-20", REF, d(2023, 5, 20), d(2023, 5, 21)),
    ("what happened on 5/20/2023", REF, d(2023, 5, 20), d(2023, 5, 21)),
    ("what did I do in 2021", REF, d(2021, 1, 1), d(2022, 1, 1)),
]


@pytest.mark.parametrize(("text", "ref", "start", "end"), WINDOWS)
def test_windows(text: str, ref: datetime, start: datetime, end: datetime) -> None:
    hint = resolve(text, ref)
    assert (hint.start, hint.end) == (start, end)
    assert 0 < hint.confidence <= 1


ORDERS = [
    ("what was the earliest trip I took?", "earliest"),
    ("what did I initially plan?", "earliest"),
    ("what is my most recent purchase?", "latest"),
    ("what is the latest book I read?", "latest"),
    ("what did I buy before I moved?", "earliest"),
    ("what did I buy after I moved?", "latest"),
]


@pytest.mark.parametrize(("text", "order"), ORDERS)
def test_orders(text: str, order: str) -> None:
    hint = resolve(text, REF)
    assert hint.order == order
    assert 0 < hint.order_confidence <= 1


@pytest.mark.parametrize(
    "text",
    [
        "how do I cook rice?",
        "which did I buy first, the lamp or the desk?",
        "may I ask about my dog's name",
        "what is my favourite colour",
        "where do I work",
    ],
)
def test_no_hint(text: str) -> None:
    hint = resolve(text, REF)
    assert hint.empty
    assert hint.confidence == 0


def test_naive_reference_is_utc() -> None:
    assert resolve("yesterday", datetime(2023, 5, 30, 12)).start == d(2023, 5, 29)


def test_mentions_time_gates_cheaply() -> None:
    assert mentions_time("what did I do last Saturday?")
    assert not mentions_time("how do I cook rice?")
