"""Metadata and metadata_filter are validated in time linear in the object's size: shared
references (a node ``[n, n]`` nested 40 levels, 2**40 leaves once expanded) are rejected at once,
and a filter is bounded in size like metadata."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from memfuse_memory import BlockingBufferService
from memfuse_memory.errors import InvalidMessageError, InvalidQueryError


def shared(levels: int) -> Any:
    node: Any = "x"
    for _ in range(levels):
        node = [node, node]
    return node


def finishes(call: Any) -> BaseException | None:
    """Run ``call`` in a thread; the error it raised (None when it returned), or fail if it never ends."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # handed back to the test
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(120)  # a generous bound: the exponential walk needs hours here
    assert outcome, "validation did not finish: the walk is not linear"
    return outcome[0]


def test_shared_references_and_huge_filters_are_rejected(memory: BlockingBufferService) -> None:
    bomb = {"k": shared(40)}
    added = finishes(lambda: memory.add([{"role": "user", "content": "hi", "metadata": bomb}], "s"))
    assert isinstance(added, InvalidMessageError) and "larger than" in str(added)
    queried = finishes(lambda: memory.query("hi", metadata_filter=bomb))
    assert isinstance(queried, InvalidQueryError) and "larger than" in str(queried)
    with pytest.raises(InvalidQueryError, match="larger than"):
        memory.query("hi", metadata_filter={"k": "v" * 10_000_000})
    with pytest.raises(InvalidQueryError, match="larger than"):
        memory.query("hi", metadata_filter={f"k{n}": n for n in range(20_000)})
    small = {"k": shared(6)}  # 64 leaves: fine
    memory.add([{"role": "user", "content": "hi", "metadata": small}], "s")
    assert memory.query("hi", metadata_filter=small)["status"] == "success"
    assert memory.export_messages()["data"]["total"] == 1
    print("[metadata-walk] shared_levels=40 rejected=4 accepted=2 written_by_rejected=0")
