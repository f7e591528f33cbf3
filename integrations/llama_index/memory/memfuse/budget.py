"""The recent window: the newest whole turns of a session that fit a token budget (pure, no I/O).

A turn starts at a user message and holds every reply after it (assistant messages, tool calls
and their results), so a window made of whole turns never starts with an orphaned tool result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llama_index.core.base.llms.types import ChatMessage

from llama_index.memory.memfuse.messages import from_engine_message
from memfuse_memory.errors import InvalidInputError

# Messages fetched by the first history read of a ``get``; each further read fetches 4x more.
FIRST_FETCH = 64


class TokenBudgetError(InvalidInputError):
    """The token budget cannot hold even the newest message of the conversation."""


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
    return complete or _cost(entries) > budget


def split_turns(entries: Sequence[Entry]) -> list[list[Entry]]:
    """Group a session's messages (oldest first) into turns; each user message opens one."""
    turns: list[list[Entry]] = []
    for entry in entries:
        if not turns or entry.role == "user":
            turns.append([entry])
        else:
            turns[-1].append(entry)
    return turns


def _cost(entries: Sequence[Entry]) -> int:
    return sum(entry.tokens for entry in entries)


def select_window(turns: Sequence[Sequence[Entry]], budget: int, older_budget: int) -> list[Entry]:
    """The newest whole turns within budget, oldest first.

    The newest turn may use the whole ``budget``; older turns are added while the window stays
    within ``older_budget`` (the rest of the budget is kept for recalled memories). When even the
    newest turn does not fit, its longest tail that fits and does not start with a tool result is
    returned; when not even its last message fits, :class:`TokenBudgetError` is raised.
    """
    if not turns:
        return []
    newest = list(turns[-1])
    used = _cost(newest)
    if used > budget:
        return _tail(newest, budget)
    window = newest
    for turn in reversed(turns[:-1]):
        cost = _cost(turn)
        if used + cost > older_budget:
            break
        window = [*turn, *window]
        used += cost
    # only a history that does not open with a user message can start with a tool result here
    while window and window[0].role == "tool":
        window.pop(0)
    return window


def _tail(turn: Sequence[Entry], budget: int) -> list[Entry]:
    best: list[Entry] = []
    used = 0
    for index in range(len(turn) - 1, -1, -1):
        used += turn[index].tokens
        if used > budget:
            break
        if turn[index].role != "tool":
            best = list(turn[index:])
    if not best:
        raise TokenBudgetError(
            f"the newest turn needs {_cost(turn)} tokens and no tail of it without an orphaned tool "
            f"result fits the {budget} tokens left (token_limit minus initial_token_count); "
            "raise token_limit or shorten the message"
        )
    return best
