"""A session's stored messages as counted entries for the recent window (pure, no I/O).

The window itself (whole turns within a token budget) is :mod:`memfuse_memory.window`, shared
with the LangChain middleware.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llama_index.core.base.llms.types import ChatMessage

from llama_index.memory.memfuse.messages import from_engine_message
from memfuse_memory.window import TokenBudgetError, cost, select_window, split_turns

__all__ = ["FIRST_FETCH", "Entry", "TokenBudgetError", "enough", "select_window", "split_turns", "to_entries"]

# Messages fetched by the first history read of a ``get``; each further read fetches 4x more.
FIRST_FETCH = 64


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored message of the session, converted and counted."""

    id: str
    role: str
    message: ChatMessage
    tokens: int


def to_entries(
    newest_first: Sequence[Mapping[str, Any]], count: Callable[[str], int], *, complete: bool
) -> list[Entry]:
    """Convert a read of the session's newest messages into entries, oldest first.

    When the read did not reach the session's start (``complete`` False), a leading run of
    non-user messages may be the tail of a cut turn, so it is left out.
    """
    entries = [
        Entry(id=m["id"], role=m["role"], message=from_engine_message(m), tokens=count(m["content"]))
        for m in reversed(newest_first)
    ]
    if not complete:
        while entries and entries[0].role != "user":
            entries.pop(0)
    return entries


def enough(entries: Sequence[Entry], budget: int, *, complete: bool) -> bool:
    """True when a read holds the whole session or more tokens than the budget can take."""
    return complete or cost(entries) > budget
