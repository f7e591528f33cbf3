"""Storage faults: the vector store and the keyword index fail, hang, go down and come back.

Adds keep being accepted, the breaker opens and half-opens, queries answer degraded from what
still works (and say so), and after recovery every acknowledged message reaches storage once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from memfuse_memory import BlockingBufferService
from memfuse_memory.errors import MemFuseError, StorageError, StorageUnavailableError
from tests.fakes import FakeEmbedder, MemoryVectorStore
from tests.faults import BreakerRecorder, FaultInjector, FaultyKeywordIndex, FaultyVectorStore, drain

FAST_RETRY: dict[str, Any] = {
    "retry__max_attempts": 2,
    "retry__initial_backoff_seconds": 0.01,
    "retry__max_backoff_seconds": 0.05,
    "retry__breaker_failure_threshold": 2,
    "retry__breaker_reset_seconds": 0.1,
}
DEADLINE = 30.0

Opener = Callable[..., BlockingBufferService]


@pytest.fixture
def inner() -> MemoryVectorStore:
    return MemoryVectorStore()


@pytest.fixture
def faulty(inner: MemoryVectorStore) -> FaultyVectorStore:
    return FaultyVectorStore(inner)


@pytest.fixture
def open_service(tmp_path: Path, faulty: FaultyVectorStore) -> Iterator[Opener]:
    """Start services on one data dir over the faulty vector store; all closed after the test."""
    opened: list[BlockingBufferService] = []

    def build(**overrides: Any) -> BlockingBufferService:
        settings = {**FAST_RETRY, **overrides}
        service = BlockingBufferService.from_config(
            data_dir=tmp_path / "data", embedder=FakeEmbedder(), vector_store=faulty, **settings
        ).start()
        opened.append(service)
        return service

    yield build
    for service in opened:
        service.close()


def turn(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}, {"role": "assistant", "content": f"ack {text}"}]


def check_nothing_lost(
    service: BlockingBufferService, inner: MemoryVectorStore, acknowledged: dict[str, list[str]]
) -> tuple[int, int]:
    """Every acknowledged id is stored exactly once and indexed exactly once; return (lost, duplicates)."""
    exported = [m["id"] for m in service.export_messages(all_users=True)["data"]["messages"]]
    expected = [mid for ids in acknowledged.values() for mid in ids]
    indexed = Counter(
        mid for bucket in inner.items.values() for item in bucket.values() for mid in item.chunk.message_ids
    )
    lost = len(set(expected) - set(exported)) + len(set(expected) - set(indexed))
    duplicates = (len(exported) - len(set(exported))) + sum(n - 1 for n in indexed.values() if n > 1)
    assert sorted(exported) == sorted(expected)
    assert set(indexed) == set(expected)
    return lost, duplicates


def test_outage_keeps_accepting_degrades_queries_and_drains_after_recovery(
    open_service: Opener, faulty: FaultyVectorStore, inner: MemoryVectorStore
) -> None:
    service = open_service(buffer__round_buffer__max_size=1, buffer__hybrid_buffer__max_size=1)
    recorder = BreakerRecorder(service.engine.memory.vector_breaker)
    faulty.faults.fail()
    acknowledged: dict[str, list[str]] = {}
    degraded_replies = 0
    for n in range(40):
        session = f"s{n % 4}"
        reply = service.add(turn(f"outage note {n} kiwi{n}"), session_id=session, user_id="u")
        acknowledged.setdefault(session, []).extend(reply["data"]["message_ids"])
        found = service.query(f"kiwi{n}", user_id="u")["data"]
        assert found["degraded"] and any("vector store" in error for error in found["errors"])
        assert not found["cached"]
        assert f"outage note {n} kiwi{n}" in [r["content"] for r in found["results"]]
        degraded_replies += 1
    with pytest.raises(StorageUnavailableError):
        service.flush_all(timeout=DEADLINE)
    threading.Event().wait(0.15)  # past breaker_reset_seconds: the next call is a half-open trial
    assert service.query("kiwi3", user_id="u")["data"]["degraded"]
    stats = service.get_stats()
    pending = stats["storage"]["pending_rounds"]
    assert pending >= 39 and stats["storage"]["messages"] == 80
    assert stats["write_buffer"]["component_health"]["vector_store"].startswith("degraded")
    assert ("closed", "open") in recorder.transitions
    assert ("open", "half_open") in recorder.transitions and ("half_open", "open") in recorder.transitions
    assert inner.rounds() == 0

    faulty.faults.heal()
    attempts = drain(service, DEADLINE)
    assert recorder.transitions[-1] == ("half_open", "closed")
    assert service.get_stats()["storage"]["pending_rounds"] == 0
    lost, duplicates = check_nothing_lost(service, inner, acknowledged)
    for session, ids in acknowledged.items():
        history = service.get_messages_by_session(session, user_id="u")["data"]["messages"]
        assert [m["id"] for m in history] == ids
    healthy = service.query("kiwi7", user_id="u")["data"]
    assert not healthy["degraded"] and healthy["errors"] == []
    assert healthy["results"][0]["content"] == "outage note 7 kiwi7" and healthy["results"][0]["source"] == "storage"
    print(
        f"\n[faults/outage] accepted_adds=40 degraded_queries={degraded_replies} pending_before_recovery={pending} "
        f"breaker_transitions={recorder.transitions} opened={recorder.breaker.opened_count} "
        f"injected_failures={dict(faulty.faults.failures)} flush_attempts={attempts} "
        f"drained={pending} lost={lost} duplicates={duplicates}"
    )
    assert lost == 0 and duplicates == 0


def test_store_down_for_a_while_recovers_by_itself(
    open_service: Opener, faulty: FaultyVectorStore, inner: MemoryVectorStore
) -> None:
    service = open_service(buffer__round_buffer__max_size=1, buffer__hybrid_buffer__max_size=1)
    recorder = BreakerRecorder(service.engine.memory.vector_breaker)
    faulty.faults.down_for(0.6)
    started = time.monotonic()
    acknowledged: dict[str, list[str]] = {}
    for n in range(12):
        reply = service.add(turn(f"timed outage {n}"), session_id="s", user_id="u")
        acknowledged.setdefault("s", []).extend(reply["data"]["message_ids"])
    add_seconds = time.monotonic() - started
    attempts = drain(service, DEADLINE)
    waited = time.monotonic() - started
    assert waited >= 0.6 - 1e-3, "storage cannot have drained while it was down"
    assert faulty.faults.failures["upsert"] >= 1
    assert ("closed", "open") in recorder.transitions and recorder.transitions[-1] == ("half_open", "closed")
    lost, duplicates = check_nothing_lost(service, inner, acknowledged)
    print(
        f"\n[faults/down_for] accepted_adds=12 add_seconds={add_seconds:.3f} drained_after={waited:.3f}s "
        f"flush_attempts={attempts} upsert_failures={faulty.faults.failures['upsert']} "
        f"breaker_transitions={recorder.transitions} lost={lost} duplicates={duplicates}"
    )
    assert lost == 0 and duplicates == 0


def test_every_kth_call_failing_loses_and_duplicates_nothing(
    open_service: Opener, faulty: FaultyVectorStore, inner: MemoryVectorStore
) -> None:
    service = open_service(
        buffer__round_buffer__max_size=2, buffer__hybrid_buffer__max_size=2, retry__breaker_failure_threshold=50
    )
    faulty.faults.every(3)
    acknowledged: dict[str, list[str]] = {}
    for n in range(60):
        session = f"s{n % 6}"
        reply = service.add(turn(f"flaky {n}"), session_id=session, user_id=f"user{n % 2}")
        acknowledged.setdefault(session, []).extend(reply["data"]["message_ids"])
    attempts = drain(service, DEADLINE)
    assert faulty.faults.failures["upsert"] >= 1
    lost, duplicates = check_nothing_lost(service, inner, acknowledged)
    rounds = service.get_stats()["storage"]["rounds"]
    assert inner.rounds() == rounds == 60
    print(
        f"\n[faults/every_3rd] accepted_adds=60 upsert_calls={faulty.faults.calls['upsert']} "
        f"upsert_failures={faulty.faults.failures['upsert']} flush_attempts={attempts} "
        f"rounds_indexed={inner.rounds()} lost={lost} duplicates={duplicates}"
    )
    assert lost == 0 and duplicates == 0


def test_hanging_store_times_out_without_blocking_adds(
    open_service: Opener, faulty: FaultyVectorStore, inner: MemoryVectorStore
) -> None:
    service = open_service(buffer__round_buffer__max_size=1, buffer__hybrid_buffer__max_size=1)
    faulty.faults.hang(0.3, times=4)
    acknowledged: dict[str, list[str]] = {"s": []}
    slowest = 0.0
    for n in range(10):
        started = time.monotonic()
        acknowledged["s"] += service.add(turn(f"hang {n}"), session_id="s", user_id="u")["data"]["message_ids"]
        slowest = max(slowest, time.monotonic() - started)
    assert slowest < 0.3, f"an add waited on the hanging store ({slowest:.3f} s)"
    started = time.monotonic()
    reply = service.query("hang", user_id="u")["data"]
    query_seconds = time.monotonic() - started
    assert reply["results"], "the keyword index and the buffers still answer"
    attempts = drain(service, DEADLINE)
    assert faulty.faults.failures["upsert"] + faulty.faults.failures["query"] == 4
    lost, duplicates = check_nothing_lost(service, inner, acknowledged)
    print(
        f"\n[faults/hang] accepted_adds=10 slowest_add={slowest:.3f}s query_seconds={query_seconds:.3f} "
        f"degraded={reply['degraded']} timeouts={sum(faulty.faults.failures.values())} flush_attempts={attempts} "
        f"lost={lost} duplicates={duplicates}"
    )
    assert lost == 0 and duplicates == 0


@pytest.mark.parametrize("failure", ["raise", "hang", "storage_error"])
def test_keyword_index_fault_degrades_to_vectors(open_service: Opener, faulty: FaultyVectorStore, failure: str) -> None:
    service = open_service()
    service.add(turn("stored fact about a violet kayak"), session_id="old", user_id="u")
    service.flush_all()
    service.add(turn("buffered fact about a violet kayak"), session_id="new", user_id="u")
    service.engine.write_buffer.transfer_all()
    service.engine.worker.wait_caught_up(None)
    service.add(turn("round buffered violet kayak"), session_id="newest", user_id="u")
    keyword = FaultyKeywordIndex(service.engine.store).install()
    if failure == "raise":
        keyword.faults.fail()
    elif failure == "hang":
        keyword.faults.hang(0.2)
    else:
        keyword.faults.fail(error=StorageError)
    service.query("violet kayak", user_id="u")
    reply = service.query("violet kayak", user_id="u")["data"]
    assert reply["degraded"] and not reply["cached"]
    assert any(error.startswith("keyword store") for error in reply["errors"])
    found = {r["content"]: r for r in reply["results"]}
    assert found["stored fact about a violet kayak"]["source"] == "storage"
    assert found["buffered fact about a violet kayak"]["source"] == "hybrid_buffer"
    assert all(r["retrieval"]["methods"] == ["vector"] for r in reply["results"])
    keyword.faults.heal()
    healthy = service.query("violet kayak", user_id="u")["data"]
    assert not healthy["degraded"] and not healthy["cached"], "a degraded answer must not be cached"
    assert "round buffered violet kayak" in [r["content"] for r in healthy["results"]]
    print(
        f"\n[faults/keyword-{failure}] keyword_failures={keyword.faults.failures['keyword_search']} "
        f"degraded_results={len(reply['results'])} healthy_results={len(healthy['results'])}"
    )


def test_both_stores_down_still_answers_from_the_buffers(open_service: Opener, faulty: FaultyVectorStore) -> None:
    service = open_service()
    service.add(turn("amber lantern in storage"), session_id="s", user_id="u")
    service.flush_all()
    service.add(turn("amber lantern in the hybrid buffer"), session_id="t", user_id="u")
    service.engine.write_buffer.transfer_all()
    service.engine.worker.wait_caught_up(None)
    keyword = FaultyKeywordIndex(service.engine.store).install()
    keyword.faults.fail()
    faulty.faults.fail()
    reply = service.query("amber lantern", user_id="u")["data"]
    assert reply["degraded"] and len(reply["errors"]) == 2
    assert {r["content"] for r in reply["results"]} == {
        "amber lantern in the hybrid buffer",
        "ack amber lantern in the hybrid buffer",
    }
    assert {r["source"] for r in reply["results"]} == {"hybrid_buffer"}
    other = service.query("amber lantern", user_id="someone else")["data"]
    assert other["results"] == [] and other["degraded"]


def test_delete_during_outage_is_typed_and_changes_nothing(
    open_service: Opener, faulty: FaultyVectorStore, inner: MemoryVectorStore
) -> None:
    service = open_service()
    ids = service.add(turn("delete me later"), session_id="s", user_id="u")["data"]["message_ids"]
    service.flush_all()
    faulty.faults.fail()
    with pytest.raises(StorageUnavailableError):
        service.delete_session("s", user_id="u")
    with pytest.raises(StorageUnavailableError):
        service.delete_messages(ids[:1], user_id="u")
    assert [m["id"] for m in service.export_messages(all_users=True)["data"]["messages"]] == ids
    assert inner.rounds("u") == 1
    faulty.faults.heal()
    breaker = service.engine.memory.vector_breaker
    deadline = time.monotonic() + DEADLINE
    while breaker.state == "open":
        assert time.monotonic() < deadline
        threading.Event().wait(0.02)
    assert service.delete_session("s", user_id="u")["data"]["deleted_messages"] == 2
    assert service.export_messages(all_users=True)["data"]["messages"] == [] and inner.rounds("u") == 0


def test_close_during_outage_then_restart_indexes_everything(
    open_service: Opener, faulty: FaultyVectorStore, inner: MemoryVectorStore
) -> None:
    first = open_service()
    faulty.faults.fail()
    acknowledged: dict[str, list[str]] = {"s": []}
    for n in range(8):
        acknowledged["s"] += first.add(turn(f"before close {n}"), session_id="s", user_id="u")["data"]["message_ids"]
    first.close()
    assert inner.rounds() == 0
    faulty.faults.heal()
    second = open_service()
    recovered = second.get_stats()["service"]["recovered_rounds"]
    assert recovered == 8
    drain(second, DEADLINE)
    lost, duplicates = check_nothing_lost(second, inner, acknowledged)
    print(f"\n[faults/restart] accepted_adds=8 recovered_rounds={recovered} lost={lost} duplicates={duplicates}")
    assert lost == 0 and duplicates == 0


def test_fault_injector_modes() -> None:
    now = [0.0]
    faults = FaultInjector(operations={"upsert"}, clock=lambda: now[0])
    faults.check("query")
    faults.every(2)
    outcomes = []
    for _ in range(4):
        try:
            faults.check("upsert")
            outcomes.append("ok")
        except ConnectionError:
            outcomes.append("fail")
    assert outcomes == ["ok", "fail", "ok", "fail"]
    faults.down_for(1.0)
    with pytest.raises(ConnectionError):
        faults.check("upsert")
    now[0] = 1.5
    faults.check("upsert")
    faults.fail(1)
    with pytest.raises(ConnectionError):
        faults.check("upsert")
    faults.check("upsert")
    assert faults.calls == Counter({"upsert": 8, "query": 1}) and faults.failures["upsert"] == 4
    assert issubclass(StorageUnavailableError, MemFuseError)
