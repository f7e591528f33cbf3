"""A role prior: the user's own turns rank above the assistant's replies, unless the query asks
what the assistant said.

What a memory is asked about is mostly what the user said (their facts, plans, purchases), while
the assistant's replies are long, generic, and share their round's vector score with the user turn
they answer: left alone, they fill half of the top results. A reply keeps ``weight`` of its score,
so it still ranks, below the user turns that fit as well. A query that refers to the assistant's
own earlier words ("you recommended", "what did you say", "our previous chat") keeps every score.
Pure: scores only move down, so they stay within [0, 1], and no hit is removed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from memfuse_memory.models import Hit

REPLY_ROLES = frozenset({"assistant", "tool"})
"""The roles whose turns the prior lowers: the other side of the conversation."""

_VERBS = (
    "said|told|mentioned|recommended|suggested|provided|gave|wrote|created|listed|made|shared|explained|"
    "described|discussed|talked|offered|proposed|advised|named|showed|came up with|included"
)
_PRESENT = "say|tell|mention|recommend|suggest|provide|give|write|create|list|make|share|explain|describe|name|show"
ASKS_ABOUT_ASSISTANT = re.compile(
    rf"\b(?:you|we)(?:'ve|'d| have| had)?(?:\s+\w+){{0,2}}?\s+(?:{_VERBS})\b"
    rf"|\b(?:did|do) you(?:\s+\w+)?\s+(?:{_PRESENT})\b"
    r"|\bremind me\b"
    r"|\bour (?:previous|last|earlier|past|prior|recent) (?:conversation|chat|discussion|talk|exchange)s?\b",
    re.IGNORECASE,
)
"""A query about what the assistant said or did earlier: "you recommended", "did you say", "remind me"."""


def asks_about_assistant(text: str) -> bool:
    """Whether the query refers to the assistant's own earlier words (then replies are not lowered)."""
    return ASKS_ABOUT_ASSISTANT.search(text) is not None


def favour_user_turns(hits: Sequence[Hit], roles: Mapping[str, str], weight: float, text: str) -> list[Hit]:
    """The same hits, each reply's score times ``weight``, best first (stable among equal scores).

    ``roles`` maps message id to role (a hit without one keeps its score); ``weight`` 1 or more, or
    a query about the assistant's words, changes nothing.
    """
    if weight >= 1.0 or asks_about_assistant(text):
        return list(hits)
    share = max(weight, 0.0)
    for hit in hits:
        if roles.get(hit.message_id) in REPLY_ROLES:
            hit.score *= share
    return sorted(hits, key=lambda hit: -hit.score)
