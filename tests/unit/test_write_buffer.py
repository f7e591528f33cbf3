"""WriteBuffer: the one owner of the RoundBuffer and HybridBuffer; every method is one intent."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np

from memfuse_memory.buffer.chunking import MessageChunkStrategy
from memfuse_memory.buffer.hybrid_buffer import HybridBuffer
from memfuse_memory.buffer.round_buffer import RoundBuffer
from memfuse_memory.buffer.write_buffer import WriteBuffer
from memfuse_memory.models import Scope
from memfuse_memory.tokens import TokenCounter
from tests.builders import key, round_of


def buffer(round_size: int = 5, hybrid_size: int = 5) -> tuple[WriteBuffer, RoundBuffer, HybridBuffer]:
    rounds, hybrid = RoundBuffer(10_000, round_size), HybridBuffer(hybrid_size)
    return WriteBuffer(rounds, hybrid, MessageChunkStrategy(), TokenCounter("gpt-4o-mini")), rounds, hybrid


def embed_all(wb: WriteBuffer) -> None:
    chunks = wb.next_embedding_batch(100)
    wb.install_vectors(chunks, np.eye(len(chunks), 8, dtype=np.float32))


def test_a_round_moves_round_buffer_then_hybrid_buffer_then_storage() -> None:
    wb, _, _ = buffer()
    wb.add_rounds([round_of("r1", "hello there")])
    assert wb.location(key("r1")) == "round_buffer" and wb.has_work() and not wb.embedding_pending()
    assert wb.transfer_all() == {key("r1")}
    assert wb.location(key("r1")) == "hybrid_buffer" and wb.has_work() and wb.embedding_pending()
    embed_all(wb)
    assert not wb.embedding_pending()
    due = wb.due(True)
    assert [e.round.id for e in due] == ["r1"] and wb.holds_any([key("r1")])
    wb.confirm_stored(due)
    assert wb.location(key("r1")) == "storage" and not wb.holds_any([key("r1")]) and not wb.has_work()


def test_a_round_in_the_round_buffer_is_embedded_at_once_and_its_vector_moves_on() -> None:
    wb, _, _ = buffer()
    wb.add_rounds([round_of("r1", "hello there")])
    chunks = wb.next_embedding_batch(10)
    assert [c.round_id for c in chunks] == ["r1"] and wb.location(key("r1")) == "round_buffer"
    wb.install_vectors(chunks, np.ones((1, 8), dtype=np.float32))
    assert not wb.has_work()
    assert [c.round_id for c, _ in wb.search_vectors(np.ones(8, dtype=np.float32), lambda s: True, 5)] == ["r1"]
    wb.transfer_all()
    assert not wb.embedding_pending() and wb.location(key("r1")) == "hybrid_buffer"
    assert [e.round.id for e in wb.due(True)] == ["r1"]


def test_hybrid_buffer_chunks_are_embedded_before_round_buffer_chunks() -> None:
    wb, _, _ = buffer()
    wb.add_rounds([round_of("r1", "first")])
    wb.transfer_all()
    wb.add_rounds([round_of("r2", "second")])
    assert [c.round_id for c in wb.next_embedding_batch(1)] == ["r1"]
    assert [c.round_id for c in wb.next_embedding_batch(2)] == ["r1", "r2"]


def test_unembedded_takes_only_the_scope_asked_and_at_most_the_limit() -> None:
    wb, _, _ = buffer()
    wb.add_rounds([round_of("r1", "mine"), round_of("r2", "again")])
    wb.add_rounds([round_of("r3", "theirs", user="other")])
    assert {c.round_id for c in wb.unembedded(lambda s: s.user_id == "u", 10)} == {"r1", "r2"}
    assert len(wb.unembedded(lambda s: True, 1)) == 1 and wb.unembedded(lambda s: True, 0) == []


def test_a_vector_of_a_round_that_grew_meanwhile_is_not_installed() -> None:
    wb, _, _ = buffer()
    wb.add_rounds([round_of("r1", "question")])
    stale = wb.next_embedding_batch(10)
    last = wb.last_round(Scope("u", "s"))
    assert last is not None
    wb.extend_round(last, [replace(m, round_id="r1", id="r1-1") for m in round_of("x", "answer").messages])
    wb.install_vectors(stale, np.ones((1, 8), dtype=np.float32))
    assert [c.text for c in wb.next_embedding_batch(10)] == ["user: question\nuser: answer"]


def test_tokens_are_counted_on_the_way_in() -> None:
    wb, rounds, _ = buffer()
    wb.add_rounds([round_of("r1", "one two three")])
    assert rounds.current_tokens > 0
    assert wb.stats()["total_writes"] == 1 and wb.stats()["total_messages"] == 1


def test_extend_round_grows_a_queued_round_in_place() -> None:
    wb, rounds, _ = buffer()
    wb.add_rounds([round_of("r1", "question")])
    last = wb.last_round(Scope("u", "s"))
    assert last is not None and last.id == "r1"
    extra = round_of("x", "answer").messages
    wb.extend_round(last, [replace(m, round_id="r1", id="r1-1") for m in extra])
    assert [m.content for m in rounds.rounds()[0].messages] == ["question", "answer"]


def test_extend_round_rechunks_a_transferred_round_and_a_stale_confirm_keeps_it() -> None:
    wb, _, hybrid = buffer()
    wb.add_rounds([round_of("r1", "question")])
    last = wb.last_round(Scope("u", "s"))
    assert last is not None
    wb.transfer_all()
    embed_all(wb)
    flushing = wb.due(True)  # the worker is storing the old version...
    wb.extend_round(last, [replace(round_of("x", "answer").messages[0], id="r1-1", round_id="r1")])
    wb.confirm_stored(flushing)  # ...and confirms it after the round grew
    assert wb.location(key("r1")) == "hybrid_buffer", "the grown round stays, to be stored again"
    (entry,) = hybrid.entries()
    assert [m.content for m in entry.round.messages] == ["question", "answer"] and not entry.embedded


def test_extend_round_buffers_again_a_round_already_stored() -> None:
    wb, rounds, _ = buffer()
    wb.add_rounds([round_of("r1", "question")])
    last = wb.last_round(Scope("u", "s"))
    assert last is not None
    wb.transfer_all()
    embed_all(wb)
    wb.confirm_stored(wb.due(True))
    wb.extend_round(last, [replace(round_of("x", "answer").messages[0], id="r1-1", round_id="r1")])
    assert wb.location(key("r1")) == "round_buffer"
    assert [m.content for m in rounds.rounds()[0].messages] == ["question", "answer"]


def test_forget_and_discard_reach_both_buffers() -> None:
    wb, _, _ = buffer(round_size=1)
    wb.add_rounds([round_of("a1", "x", session="a"), round_of("a2", "y", session="a")])  # a1 transferred
    wb.add_rounds([round_of("b1", "z", session="b")])
    assert {wb.location(key(r)) for r in ("a1", "a2")} == {"hybrid_buffer", "round_buffer"}
    wb.forget(lambda scope: scope.session_id == "a")
    assert wb.location(key("a1")) == wb.location(key("a2")) == "storage"
    wb.discard_rounds({key("b1")})
    assert wb.location(key("b1")) == "storage" and wb.stats()["round_buffer"]["round_count"] == 0


def test_search_vectors_keeps_to_the_scope() -> None:
    wb, _, _ = buffer()
    wb.add_rounds([round_of("r1", "x", user="u"), round_of("r2", "y", user="v")])
    wb.transfer_all()
    embed_all(wb)
    hits = wb.search_vectors(np.eye(1, 8, dtype=np.float32)[0], lambda scope: scope.user_id == "v", 5)
    assert [chunk.round_id for chunk, _ in hits] == ["r2"]


def test_idle_sessions_transfer_and_are_forgotten_once_empty() -> None:
    now = [0.0]
    rounds, hybrid = RoundBuffer(10_000, 5), HybridBuffer(5)
    wb = WriteBuffer(rounds, hybrid, MessageChunkStrategy(), TokenCounter("gpt-4o-mini"), clock=lambda: now[0])
    wb.add_rounds([round_of("r1", "x")])
    assert wb.transfer_idle(10) == set()
    now[0] = 11
    assert wb.transfer_idle(10) == {Scope("u", "s")} and wb.location(key("r1")) == "hybrid_buffer"
    embed_all(wb)
    wb.confirm_stored(wb.due(False, {Scope("u", "s")}))
    wb.forget_idle({Scope("u", "s")})
    assert wb.transfer_idle(10) == set()


def test_listeners_are_told_outside_the_lock() -> None:
    wb, _, _ = buffer()
    answered: list[bool] = []

    def listener() -> None:
        # another thread reads the buffer: it would wait forever if the lock were still held
        reader = threading.Thread(target=wb.stats)
        reader.start()
        reader.join(timeout=30)
        answered.append(not reader.is_alive())

    wb.subscribe(listener)
    wb.add_rounds([round_of("r1", "x")])
    wb.transfer_all()
    assert answered == [True, True]
