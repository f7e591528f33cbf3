"""RoundBuffer: per-session token FIFO transfers on tokens, size, flush and idle; never mixes sessions."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from memfuse_memory.buffer.round_buffer import RoundBuffer
from memfuse_memory.models import Round, Scope, StoredMessage


def make_round(session: str, tokens: int, n: int = 0, user: str = "u") -> Round:
    scope = Scope(user_id=user, session_id=session)
    message = StoredMessage(
        id=f"{session}-{n}",
        role="user",
        content="x",
        name=None,
        created_at=datetime.now(UTC),
        metadata={},
        scope=scope,
        round_id=f"r-{session}-{n}",
    )
    return Round(id=f"r-{session}-{n}", scope=scope, messages=[message], tokens=tokens)


def test_transfer_when_tokens_would_exceed() -> None:
    buffer = RoundBuffer(max_tokens=100, max_size=10)
    assert buffer.add(make_round("s", 60, 0), 0.0) == []
    transfers = buffer.add(make_round("s", 50, 1), 0.0)
    assert [t.trigger for t in transfers] == ["tokens"]
    assert [r.id for r in transfers[0].rounds] == ["r-s-0"]
    assert buffer.current_tokens == 50 and buffer.round_count == 1


def test_single_round_over_max_tokens_passes_alone() -> None:
    buffer = RoundBuffer(max_tokens=100, max_size=10)
    buffer.add(make_round("s", 10, 0), 0.0)
    transfers = buffer.add(make_round("s", 500, 1), 0.0)
    assert [[r.id for r in t.rounds] for t in transfers] == [["r-s-0"], ["r-s-1"]]
    assert buffer.round_count == 0
    assert buffer.transfer_triggers["tokens"] == 2


def test_transfer_when_rounds_would_exceed_max_size() -> None:
    buffer = RoundBuffer(max_tokens=10_000, max_size=3)
    for n in range(3):
        assert buffer.add(make_round("s", 1, n), 0.0) == []
    transfers = buffer.add(make_round("s", 1, 3), 0.0)
    assert transfers[0].trigger == "size"
    assert len(transfers[0].rounds) == 3
    assert buffer.round_count == 1


def test_sessions_are_never_mixed_and_flush_gives_one_transfer_each() -> None:
    buffer = RoundBuffer(max_tokens=1000, max_size=5)
    buffer.add(make_round("a", 1, 0), 0.0)
    buffer.add(make_round("b", 1, 0), 0.0)
    buffer.add(make_round("a", 1, 1), 0.0)
    transfers = buffer.flush()
    assert sorted(t.scope.session_id for t in transfers) == ["a", "b"]
    for transfer in transfers:
        assert {r.scope for r in transfer.rounds} == {transfer.scope}
    assert buffer.transfer_triggers["flush"] == 2


def test_idle_sessions_transfer_and_busy_ones_stay() -> None:
    buffer = RoundBuffer(max_tokens=1000, max_size=5)
    buffer.add(make_round("old", 1, 0), 0.0)
    buffer.add(make_round("new", 1, 0), 9.0)
    transfers = buffer.flush_idle(now=10.0, idle_seconds=5.0)
    assert [t.scope.session_id for t in transfers] == ["old"]
    assert buffer.scopes() == [Scope("u", "new")]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(min_value=1, max_value=400)), max_size=60),
    st.integers(min_value=1, max_value=500),
    st.integers(min_value=1, max_value=6),
)
def test_property_order_limits_and_no_mixing(rounds: list[tuple[str, int]], max_tokens: int, max_size: int) -> None:
    buffer = RoundBuffer(max_tokens=max_tokens, max_size=max_size)
    moved: dict[str, list[str]] = {}
    for n, (session, tokens) in enumerate(rounds):
        for transfer in buffer.add(make_round(session, tokens, n), float(n)):
            assert len({r.scope for r in transfer.rounds}) == 1
            assert len(transfer.rounds) == 1 or sum(r.tokens for r in transfer.rounds) <= max_tokens
            assert len(transfer.rounds) <= max_size
            moved.setdefault(transfer.scope.session_id, []).extend(r.id for r in transfer.rounds)
        queued: dict[str, int] = {}
        for round_ in buffer.rounds():
            queued[round_.scope.session_id] = queued.get(round_.scope.session_id, 0) + round_.tokens
        assert all(total <= max_tokens for total in queued.values())
        assert all(
            count <= max_size for count in (sum(1 for r in buffer.rounds() if r.scope.session_id == s) for s in "abc")
        )
    for transfer in buffer.flush():
        moved.setdefault(transfer.scope.session_id, []).extend(r.id for r in transfer.rounds)
    for session in "abc":
        expected = [f"r-{s}-{n}" for n, (s, _) in enumerate(rounds) if s == session]
        assert moved.get(session, []) == expected
