"""The recent window: the newest whole turns of a conversation within a token budget (pure, no I/O).

A turn starts at a user message and holds every reply after it (assistant messages, tool calls
and their results), so a window made of whole turns never starts with an orphaned tool result.
The framework adapters convert their messages to anything with a ``role`` and a ``tokens`` count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from memfuse_memory.errors import InvalidInputError


class TokenBudgetError(InvalidInputError):
    """The token budget cannot hold even the newest message of the conversation."""


class Counted(Protocol):
    """One message of a conversation with its role (user, assistant, tool, system) and token count."""

    @property
    def role(self) -> str: ...

    @property
    def tokens(self) -> int: ...


EntryT = TypeVar("EntryT", bound=Counted)


def split_turns(entries: Sequence[EntryT]) -> list[list[EntryT]]:
    """Group a conversation's messages (oldest first) into turns; each user message opens one."""
    turns: list[list[EntryT]] = []
    for entry in entries:
        if not turns or entry.role == "user":
            turns.append([entry])
        else:
            turns[-1].append(entry)
    return turns


def cost(entries: Sequence[Counted]) -> int:
    """Tokens of the entries together."""
    return sum(entry.tokens for entry in entries)


def select_window(turns: Sequence[Sequence[EntryT]], budget: int, older_budget: int) -> list[EntryT]:
    """The newest whole turns within budget, oldest first.

    The newest turn may use the whole ``budget``; older turns are added while the window stays
    within ``older_budget`` (the rest of the budget is kept for recalled memories). When even the
    newest turn does not fit, its longest tail that fits and does not start with a tool result is
    returned; when not even its last message fits, :class:`TokenBudgetError` is raised.
    """
    if not turns:
        return []
    newest = list(turns[-1])
    used = cost(newest)
    if used > budget:
        return _tail(newest, budget)
    window = newest
    for turn in reversed(turns[:-1]):
        turn_cost = cost(turn)
        if used + turn_cost > older_budget:
            break
        window = [*turn, *window]
        used += turn_cost
    # only a history that does not open with a user message can start with a tool result here
    while window and window[0].role == "tool":
        window.pop(0)
    return window


def _tail(turn: Sequence[EntryT], budget: int) -> list[EntryT]:
    best: list[EntryT] = []
    used = 0
    for index in range(len(turn) - 1, -1, -1):
        used += turn[index].tokens
        if used > budget:
            break
        if turn[index].role != "tool":
            best = list(turn[index:])
    if not best:
        raise TokenBudgetError(
            f"the newest turn needs {cost(turn)} tokens and no tail of it without an orphaned tool "
            f"result fits the {budget} tokens left (token_limit minus initial_token_count); "
            "raise token_limit or shorten the message"
        )
    return best
