"""Hypothesis strategies of the public-API fuzz: good and hostile values for every argument, and the ops."""

from __future__ import annotations

import math
from datetime import UTC
from typing import Any

from hypothesis import strategies as st


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for n in range(depth):
        value = {"k": value} if n % 2 else [value]
    return value


ODD_TEXT = st.text(alphabet=st.characters(codec=None, categories=["Cs", "Cc", "L", "N", "P", "Zs"]), max_size=10)
IDS = st.one_of(
    st.none(),
    st.sampled_from(
        ["m1", "m2", "..", ".", "../m1", "/etc/passwd", "a\\b", "x" * 256, "x" * 257, " m1", "\ud800", "n\x00"]
    ),
    ODD_TEXT,
    st.integers(),
)
GOOD_USER = st.sampled_from(["alice", "bob"])
GOOD_SESSION = st.sampled_from(["s1", "s2", "naïve-séance", "a.b", "x" * 256])
GOOD_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
USERS = st.one_of(
    GOOD_USER,
    GOOD_USER,
    GOOD_USER,
    st.sampled_from(["alice", "bob", "alice", "bob", "ALICE", "../bob", "bob/..", "..", "u" * 300, "\udc80", ""]),
    st.none(),
    st.integers(),
)
SESSIONS = st.one_of(
    GOOD_SESSION,
    GOOD_SESSION,
    GOOD_SESSION,
    st.sampled_from(["s1", "s2", "s1", "..", "../../etc", "a/b", "C:\\x", "s" * 256, "s" * 257, "\ud800", " s1"]),
    st.none(),
    ODD_TEXT,
)
CONTENT = st.one_of(
    GOOD_TEXT,
    GOOD_TEXT,
    GOOD_TEXT,
    st.text(max_size=30),
    ODD_TEXT,
    st.sampled_from(["", " ", "\ud800", "a\x00b", "x" * 100_000, "y" * 100_001, "naïve café 💥", 'OR NEAR * " (']),
    st.binary(max_size=4),
    st.integers(),
    st.none(),
)
JSONISH = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**20), max_value=10**20),
        st.floats(allow_nan=True, allow_infinity=True),
        ODD_TEXT,
        st.binary(max_size=3),
        st.sets(st.integers(), max_size=2),
    ),
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children, children)
        | st.dictionaries(st.one_of(ODD_TEXT, st.integers(), st.booleans()), children, max_size=3)
    ),
    max_leaves=8,
)
METADATA = st.one_of(
    st.dictionaries(ODD_TEXT, JSONISH, max_size=3),
    st.sampled_from([{"deep": nested(60)}, {"deep": nested(2_000)}, {"deep": nested(100_000)}, {"n": 10**5000}]),
    st.just({"nan": math.nan}),
    JSONISH,
)
TIMES = st.one_of(
    st.none(),
    st.datetimes(),
    st.datetimes(timezones=st.just(UTC)),
    st.sampled_from(
        ["2024-01-01", "2024-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "soon", ""]
    ),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.booleans(),
)
GOOD_ROLE = st.sampled_from(["user", "assistant", "system", "tool"])
ROLES = st.one_of(
    GOOD_ROLE,
    GOOD_ROLE,
    GOOD_ROLE,
    st.sampled_from(["user", "assistant", "system", "tool", "", "User", "bot"]),
    st.none(),
    st.integers(),
)
MESSAGE = st.one_of(
    st.fixed_dictionaries(
        {"role": ROLES, "content": CONTENT},
        optional={"id": IDS, "name": IDS, "metadata": METADATA, "created_at": TIMES, "extra": st.integers()},
    ),
    st.fixed_dictionaries(
        {"role": GOOD_ROLE, "content": GOOD_TEXT},
        optional={
            "id": st.sampled_from(["m1", "m2", "m3"]),
            "metadata": st.dictionaries(GOOD_TEXT, JSONISH, max_size=2),
        },
    ),
    st.fixed_dictionaries({"role": GOOD_ROLE, "content": GOOD_TEXT}),
    st.fixed_dictionaries({"role": GOOD_ROLE, "content": GOOD_TEXT}),
    st.text(max_size=3),
    st.integers(),
)
MESSAGES = st.one_of(
    st.lists(MESSAGE, min_size=1, max_size=4), st.lists(MESSAGE, max_size=4), st.just("not a list"), st.none(), MESSAGE
)
HUGE = st.sampled_from([2**31, 2**63, 2**63 - 1, 2**64, 10**30])
TOP_K = st.one_of(
    st.integers(1, 20),
    st.integers(1, 20),
    st.integers(min_value=-3, max_value=10**30),
    HUGE,
    st.booleans(),
    st.floats(),
    st.none(),
    st.just("5"),
)
TIMEOUT = st.one_of(
    st.just(30),
    st.none(),
    st.floats(),
    st.just("1"),
    st.booleans(),
    HUGE,
    st.integers(-3, -1),
)
SORT = st.one_of(st.none(), st.sampled_from(["score", "timestamp", "length", ""]))
ORDER = st.one_of(st.none(), st.sampled_from(["asc", "desc", "up"]))
FILTER = st.one_of(st.none(), METADATA, st.just(["a"]), st.just("k=v"))

GOOD_MESSAGES = st.lists(
    st.fixed_dictionaries(
        {"role": GOOD_ROLE, "content": GOOD_TEXT},
        optional={
            "id": st.sampled_from(["m1", "m2", "m3"]),
            "metadata": st.dictionaries(GOOD_TEXT, JSONISH, max_size=2),
        },
    ),
    min_size=1,
    max_size=3,
)

OPS = st.one_of(
    st.tuples(st.just("add"), GOOD_MESSAGES, GOOD_SESSION, GOOD_USER, st.booleans()),
    st.tuples(st.just("add"), MESSAGES, SESSIONS, USERS, st.booleans()),
    st.tuples(st.just("query"), GOOD_TEXT, st.integers(1, 20), GOOD_USER, SESSIONS, SORT, ORDER, FILTER, TIMES, TIMES),
    st.tuples(st.just("add_batch"), st.one_of(st.lists(MESSAGES, max_size=3), st.none()), SESSIONS, USERS),
    st.tuples(st.just("query"), CONTENT, TOP_K, USERS, SESSIONS, SORT, ORDER, FILTER, TIMES, TIMES),
    st.tuples(
        st.just("history"),
        SESSIONS,
        USERS,
        st.one_of(st.none(), st.integers(-2, 5), st.just(True), HUGE, st.floats(), st.just("3")),
        ORDER,
    ),
    st.tuples(st.just("delete_session"), SESSIONS, USERS),
    st.tuples(st.just("delete_messages"), st.lists(st.integers(0, 50), max_size=3), st.lists(IDS, max_size=2), USERS),
    st.tuples(st.just("export"), st.one_of(st.none(), USERS), st.one_of(st.none(), SESSIONS)),
    st.tuples(st.just("list_sessions"), USERS),
    st.tuples(st.just("flush"), TIMEOUT),
)
