"""Scope filters: the SQL, the Chroma ``where`` and the in-memory predicate say the same thing."""

from __future__ import annotations

import sqlite3

from hypothesis import given
from hypothesis import strategies as st

from memfuse_memory.scope import INTERNAL_PREFIX, Scope, ScopeFilter

USERS = ["u", "v"]
SESSIONS = ["s", "t", f"{INTERNAL_PREFIX}catalog"]
AGENTS = [None, "a"]
RECORDS = [
    (Scope(user, session, agent), stamp)
    for user in USERS
    for session in SESSIONS
    for agent in AGENTS
    for stamp in (10, 20, 30)
]


def sql_matches(where: ScopeFilter) -> set[int]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE m (n INTEGER, user_id TEXT, session_id TEXT, agent_id TEXT, created_us INTEGER)")
    db.executemany(
        "INSERT INTO m VALUES (?, ?, ?, ?, ?)",
        [(n, s.user_id, s.session_id, s.agent_id, t) for n, (s, t) in enumerate(RECORDS)],
    )
    clause, args = where.sql("m")
    return {row[0] for row in db.execute(f"SELECT n FROM m WHERE {clause}", args)}


def chroma_matches(where: ScopeFilter) -> set[int]:
    """Chroma's ``where`` evaluated by hand: equality and $gte/$lte, joined by $and."""

    def holds(condition: dict, scope: Scope, stamp: int) -> bool:
        if "$and" in condition:
            return all(holds(part, scope, stamp) for part in condition["$and"])
        ((key, wanted),) = condition.items()
        value = stamp if key == "created_us" else getattr(scope, key)
        if isinstance(wanted, dict):
            ((op, bound),) = wanted.items()
            return value >= bound if op == "$gte" else value <= bound
        return value == wanted

    condition = where.chroma_where()
    return {
        n
        for n, (scope, stamp) in enumerate(RECORDS)
        if scope.user_id == where.user_id  # one collection per user
        and (condition is None or holds(condition, scope, stamp))
        and not (where.excludes_internal and scope.internal)  # left out after retrieval
    }


@given(
    user=st.sampled_from(USERS),
    session=st.sampled_from([None, *SESSIONS]),
    agent=st.sampled_from([None, "a"]),
    since=st.sampled_from([None, 15, 20]),
    until=st.sampled_from([None, 20, 25]),
)
def test_every_rendering_of_a_scope_selects_the_same_records(user, session, agent, since, until) -> None:
    where = ScopeFilter(user, session, agent, since, until)
    expected = {n for n, (scope, stamp) in enumerate(RECORDS) if where.accepts(scope) and where.accepts_time(stamp)}
    assert sql_matches(where) == expected
    assert chroma_matches(where) == expected


def test_internal_sessions_only_when_named() -> None:
    catalog = Scope("u", f"{INTERNAL_PREFIX}catalog")
    assert catalog.internal and not Scope("u", "s").internal
    assert not ScopeFilter("u").accepts(catalog)
    assert ScopeFilter("u", session_id=catalog.session_id).accepts(catalog)


def test_scope_is_the_conversation_key() -> None:
    assert {Scope("u", "s", "a"): 1}[Scope(user_id="u", session_id="s", agent_id="a")] == 1
    assert Scope("u", "s") != Scope("u", "s", "a")
