"""Bad input, fuzzed over the public API (blocking and async) against a model of acknowledged calls.

Every call either succeeds or raises a ``MemFuseError`` subclass; a failed call writes nothing;
afterwards the store reopens and holds exactly what was acknowledged, and no file was created
outside the data directory.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memfuse_memory import BlockingBufferService, BufferService
from memfuse_memory.engine import DEFAULT_SESSION
from memfuse_memory.errors import DuplicateMessageError, InvalidInputError, MemFuseError
from tests.engine.fuzz_strategies import OPS, nested
from tests.fakes import FakeEmbedder, MemoryVectorStore


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
