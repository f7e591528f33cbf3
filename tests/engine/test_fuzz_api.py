"""Bad input, fuzzed over the public API (blocking and async) against a model of acknowledged calls.

Every call either succeeds or raises a ``MemFuseError`` subclass; a failed call writes nothing;
afterwards the store reopens and holds exactly what was acknowledged, and no file was created
outside the data directory.
"""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memfuse_memory import BlockingBufferService, BufferService
from memfuse_memory.engine import DEFAULT_SESSION
from memfuse_memory.errors import DuplicateMessageError, InvalidInputError, MemFuseError
from tests.fakes import FakeEmbedder, MemoryVectorStore


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


@dataclass
class Model:
    """The messages the service acknowledged (and did not delete), in the order added."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    ok: int = 0
    rejected: int = 0

    def ids(self, user: object) -> set[str]:
        """The user's message ids (ids are unique per user: another user may hold the same)."""
        return {row["id"] for row in self.rows if row["user_id"] == user}

    def session(self, user: str, session: str | None) -> list[dict[str, Any]]:
        """A session's rows; ``None`` names the engine's default session, as in the API."""
        wanted = DEFAULT_SESSION if session is None else session
        return [row for row in self.rows if row["user_id"] == user and row["session_id"] == wanted]

    def add(self, messages: list[dict[str, Any]], ids: list[str], user: str, session: str) -> None:
        for message, mid in zip(messages, ids, strict=True):
            self.rows.append(
                {
                    "id": mid,
                    "user_id": user,
                    "session_id": session,
                    "role": message["role"],
                    "content": message["content"],
                    "name": message.get("name"),
                    "metadata": json.loads(json.dumps(message.get("metadata", {}), ensure_ascii=False)),
                }
            )


KEYS = ("id", "user_id", "session_id", "role", "content", "name", "metadata")


def view(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple(json.dumps(row[key], sort_keys=True) for key in KEYS) for row in rows]


class Api:
    """One call convention: blocking, or the async service driven by one event loop."""

    def __init__(self, blocking: BlockingBufferService, loop: asyncio.AbstractEventLoop | None) -> None:
        self.blocking = blocking
        self.aio = BufferService(blocking.engine)
        self.loop = loop

    def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.loop is None:
            return getattr(self.blocking, name)(*args, **kwargs)
        return self.loop.run_until_complete(getattr(self.aio, name)(*args, **kwargs))


def run_op(api: Api, model: Model, op: tuple[Any, ...]) -> None:
    """Apply one operation; check its reply against the model, and update the model on success."""
    kind = op[0]
    if kind == "add":
        _, messages, session, user, continue_round = op
        given_ids = [m.get("id") for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []
        reply = api("add", messages, session, user_id=user, continue_round=continue_round)["data"]
        assert not (model.ids(user) & set(given_ids)), "a taken id must raise DuplicateMessageError"
        assert [i for i, g in zip(reply["message_ids"], given_ids, strict=True) if g is not None] == [
            g for g in given_ids if g is not None
        ]
        model.add(messages, reply["message_ids"], user, reply["session_id"])
    elif kind == "add_batch":
        _, rounds, session, user = op
        reply = api("add_batch", rounds, session, user_id=user)["data"]
        model.add([m for r in rounds for m in r], reply["message_ids"], user, reply["session_id"])
    elif kind == "query":
        _, text, top_k, user, session, sort_by, order, wanted, since, until = op
        reply = api(
            "query",
            text,
            top_k,
            user_id=user,
            session_id=session,
            sort_by=sort_by,
            order=order,
            metadata_filter=wanted,
            since=since,
            until=until,
        )["data"]
        known = {row["id"]: row for row in model.rows if row["user_id"] == user}
        assert not reply["degraded"] and len(reply["results"]) <= min(top_k, 15)
        for result in reply["results"]:
            row = known[result["id"]]
            assert result["user_id"] == row["user_id"] == user and result["content"] == row["content"]
            assert session is None or result["session_id"] == session
    elif kind == "history":
        _, session, user, limit, order = op
        reply = api("get_messages_by_session", session, user_id=user, limit=limit, order=order or "asc")["data"]
        expected = [row["id"] for row in model.session(user, session)]
        expected = expected[-limit:] if limit else expected
        got = [m["id"] for m in reply["messages"]]
        assert got == (expected[::-1] if order == "desc" else expected)
    elif kind == "delete_session":
        _, session, user = op
        reply = api("delete_session", session, user_id=user)["data"]
        gone = model.session(user, session)
        assert reply["deleted_messages"] == len(gone)
        model.rows = [row for row in model.rows if row not in gone]
    elif kind == "delete_messages":
        _, picks, extra, user = op
        current = [row["id"] for row in model.rows]
        ids = [current[n % len(current)] for n in picks] if current else []
        ids += extra
        reply = api("delete_messages", ids, user_id=user)["data"]
        gone = [row for row in model.rows if row["id"] in ids and row["user_id"] == user]
        assert reply["deleted_messages"] == len(gone)
        model.rows = [row for row in model.rows if row not in gone]
    elif kind == "export":
        _, user, session = op
        chosen = {"all_users": True} if user is None else {"user_id": user}
        rows = api("export_messages", session_id=session, **chosen)["data"]["messages"]
        expected = [
            row for row in model.rows if user in (None, row["user_id"]) and session in (None, row["session_id"])
        ]
        assert view(rows) == view(expected)
    elif kind == "list_sessions":
        reply = api("list_sessions", user_id=op[1])["data"]
        counts: dict[str, int] = {}
        for row in model.rows:
            if row["user_id"] == op[1]:
                counts[row["session_id"]] = counts.get(row["session_id"], 0) + 1
        assert {s["session_id"]: s["messages"] for s in reply["sessions"]} == counts
    else:
        api("flush_all", op[1])


def files_outside(root: Path, data_dir: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p != data_dir and data_dir not in p.parents]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ops=st.lists(OPS, min_size=1, max_size=14), use_async=st.booleans())
def test_public_api_never_raises_untyped_and_keeps_exactly_what_it_acknowledged(
    ops: list[tuple[Any, ...]], use_async: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data_dir = root / "data"
        model = Model()
        loop = asyncio.new_event_loop() if use_async else None
        service = BlockingBufferService.from_config(
            data_dir=data_dir, embedder=FakeEmbedder(), vector_store=MemoryVectorStore()
        ).start()
        try:
            api = Api(service, loop)
            for op in ops:
                try:
                    run_op(api, model, op)
                    model.ok += 1
                except MemFuseError as exc:
                    model.rejected += 1
                    if op[0] == "add" and isinstance(op[1], list):
                        given = {m.get("id") for m in op[1] if isinstance(m, dict)}
                        if model.ids(op[3]) & given and not isinstance(exc, DuplicateMessageError):
                            assert isinstance(exc, InvalidInputError)
                assert service.engine.store.counts()["messages"] == len(model.rows)
        finally:
            service.close()
            if loop is not None:
                loop.close()
        reopened = BlockingBufferService.from_config(
            data_dir=data_dir, embedder=FakeEmbedder(), vector_store=MemoryVectorStore()
        ).start()
        try:
            assert reopened.get_stats()["service"]["recovered_rounds"] == 0
            assert view(reopened.export_messages(all_users=True)["data"]["messages"]) == view(model.rows)
        finally:
            reopened.close()
        assert files_outside(root, data_dir) == []


def test_the_fuzzer_reaches_both_outcomes() -> None:
    """The strategies produce accepted and rejected calls (the property above is not vacuous)."""
    outcomes: dict[str, int] = {"ok": 0, "rejected": 0}
    recorded: Callable[[list[tuple[Any, ...]]], None]

    @settings(max_examples=25, deadline=None, database=None)
    @given(ops=st.lists(OPS, min_size=4, max_size=8))
    def recorded(ops: list[tuple[Any, ...]]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            model = Model()
            with BlockingBufferService.from_config(
                data_dir=Path(tmp), embedder=FakeEmbedder(), vector_store=MemoryVectorStore()
            ) as service:
                api = Api(service, None)
                for op in ops:
                    try:
                        run_op(api, model, op)
                        outcomes["ok"] += 1
                    except MemFuseError:
                        outcomes["rejected"] += 1

    recorded()
    print(f"\n[fuzz/api] calls_ok={outcomes['ok']} calls_rejected={outcomes['rejected']}")
    assert outcomes["ok"] > 0 and outcomes["rejected"] > 0


def test_known_nasty_inputs_are_typed(tmp_path: Path) -> None:
    """Regression cases: deep metadata, out-of-range times after a timezone shift."""
    with BlockingBufferService.from_config(
        data_dir=tmp_path, embedder=FakeEmbedder(), vector_store=MemoryVectorStore()
    ) as service:
        for message in (
            {"role": "user", "content": "x", "metadata": {"deep": nested(100_000)}},
            {"role": "user", "content": "x", "metadata": {"deep": nested(2_000)}},
            {"role": "user", "content": "x", "created_at": "0001-01-01T00:00:00+14:00"},
            {"role": "user", "content": "x", "created_at": "9999-12-31T23:59:59-14:00"},
        ):
            try:
                service.add([message], "s")
            except MemFuseError:
                continue
            raise AssertionError(f"accepted {str(message)[:60]}")
        for kwargs in (
            {"metadata_filter": {"deep": nested(5_000)}},
            {"since": "0001-01-01T00:00:00+14:00"},
            {"until": datetime(9999, 12, 31, 23, 0)},
        ):
            try:
                service.query("x", **kwargs)
            except MemFuseError:
                continue
        assert service.export_messages(all_users=True)["data"]["messages"] == []
