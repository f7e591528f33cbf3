"""Every numeric argument of the public API is type-checked and bounded: a typed error, never
OverflowError, TypeError or a NaN that silently means 'no deadline'."""

from __future__ import annotations

import math
from typing import Any

import pytest

from memfuse_memory import BlockingBufferService
from memfuse_memory.errors import InvalidInputError

BAD_COUNTS: list[Any] = [2**63, 10**30, 0, -1, True, 1.5, math.nan, "5", None]
BAD_TIMEOUTS: list[Any] = ["1", math.nan, math.inf, -1, True, 10**30, [1]]


def test_numeric_arguments_raise_typed_errors(memory: BlockingBufferService) -> None:
    memory.add([{"role": "user", "content": "hello"}], "s")
    rejected = 0
    for value in BAD_COUNTS:
        if value is not None:
            with pytest.raises(InvalidInputError):
                memory.get_messages_by_session("s", limit=value)
            rejected += 1
        with pytest.raises(InvalidInputError):
            memory.query("hello", top_k=value)
        rejected += 1
    for value in BAD_TIMEOUTS:
        with pytest.raises(InvalidInputError):
            memory.flush_all(timeout=value)
        with pytest.raises(InvalidInputError):
            memory.engine.close(timeout=value)
        rejected += 2
    assert memory.engine.state == "running"  # a rejected close changes nothing
    assert memory.flush_all(timeout=5)["status"] == "success"
    assert memory.get_messages_by_session("s", limit=1_000_000)["data"]["total"] == 1
    print(f"[numeric-args] rejected={rejected} untyped=0")
