"""The two facades are one API: the same public methods with the same signatures, generated
from the Engine's, and neither ``from_config`` starts the engine."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from memfuse_memory import BlockingBufferService, BufferService
from memfuse_memory.engine import Engine
from memfuse_memory.errors import ServiceClosedError
from tests.fakes import FakeEmbedder, MemoryVectorStore

# Lifecycle differs by calling convention: context-manager protocols and the async->blocking bridge.
_CONVENTION = {"__enter__", "__exit__", "__aenter__", "__aexit__", "blocking"}


def public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_") or name in _CONVENTION}


def test_both_facades_offer_the_same_public_methods() -> None:
    assert public(BufferService) - _CONVENTION - public(BlockingBufferService) == set()
    assert public(BlockingBufferService) - _CONVENTION - public(BufferService) == set()


@pytest.mark.parametrize("name", sorted(public(BlockingBufferService) - _CONVENTION))
def test_every_public_method_has_one_signature(name: str) -> None:
    blocking, aio = getattr(BlockingBufferService, name), getattr(BufferService, name)
    if isinstance(blocking, property):
        assert isinstance(aio, property)
        return
    sync_signature, async_signature = inspect.signature(blocking), inspect.signature(aio)
    assert list(sync_signature.parameters.values()) == list(async_signature.parameters.values()), name
    if name in ("start", "close", "from_config"):
        return  # they return the facade itself (or None); parameters are what callers see alike
    assert sync_signature == async_signature, name
    engine_method = getattr(Engine, name)
    assert sync_signature == inspect.signature(engine_method), f"{name} differs from Engine.{name}"
    assert blocking.__doc__ == aio.__doc__ == engine_method.__doc__
    on_the_loop = name in {"get_stats", "get_write_buffer", "get_round_buffer", "get_hybrid_buffer", "get_query_buffer"}
    assert inspect.iscoroutinefunction(aio) != on_the_loop, name


def test_blocking_query_shows_the_typed_signature() -> None:
    parameters = inspect.signature(BlockingBufferService.query).parameters
    assert list(parameters)[:3] == ["self", "query", "top_k"]
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    assert {"user_id", "session_id", "agent_id", "sort_by", "order", "metadata_filter", "since", "until"} <= set(
        parameters
    )


@pytest.mark.parametrize("facade", [BufferService, BlockingBufferService])
def test_from_config_builds_without_starting(facade: type, tmp_path: Path) -> None:
    service = facade.from_config(data_dir=tmp_path, embedder=FakeEmbedder(), vector_store=MemoryVectorStore())
    assert isinstance(service, facade)
    assert service.engine.state == "new"
    assert service.get_round_buffer().round_count == 0  # inspections work before start
    with pytest.raises(ServiceClosedError, match="not started"):
        service.get_write_buffer()
    with pytest.raises(ServiceClosedError, match="not started"):
        service.get_stats()


async def test_both_facades_share_one_engine_and_its_buffers(amemory: BufferService) -> None:
    blocking = amemory.blocking()
    assert blocking.engine is amemory.engine
    for name in ("get_write_buffer", "get_round_buffer", "get_hybrid_buffer", "get_query_buffer"):
        assert getattr(blocking, name)() is getattr(amemory, name)()
    await amemory.add([{"role": "user", "content": "the heron nests by the lake"}], session_id="s")
    assert blocking.get_round_buffer().round_count == 1
