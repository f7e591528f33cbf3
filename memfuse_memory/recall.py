"""Recalled memories: choose query results and render them as one text within a token budget (pure).

Shared by the LlamaIndex memory and block and the LangChain agent middleware, so every adapter
picks, dedupes and packs recalled messages the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

DEFAULT_RECALL_HEADER = "Relevant memories from earlier conversations, most relevant first:"

# The engine answers at most this many results per query (``buffer.query.max_size``).
MAX_QUERY_RESULTS = 15


def query_size(top_k: int, excluded: int) -> int:
    """How many results to ask for so ``top_k`` remain after ``excluded`` ones are dropped."""
    return max(1, min(MAX_QUERY_RESULTS, top_k + excluded))


def choose(
    results: Iterable[Mapping[str, Any]],
    *,
    exclude_ids: Collection[str] = (),
    exclude_texts: Collection[str] = (),
    top_k: int,
    min_score: float,
) -> list[Mapping[str, Any]]:
    """The best ``top_k`` results not already in the prompt and scoring at least ``min_score``.

    A text is chosen once, even when it was stored several times (in two sessions, say).
    """
    chosen: list[Mapping[str, Any]] = []
    seen: set[str] = set()
    for result in results:
        text = str(result.get("content", "")).strip()
        if result["id"] in exclude_ids or text in exclude_texts or text in seen:
            continue
        if float(result.get("score") or 0.0) < min_score:
            continue
        seen.add(text)
        chosen.append(result)
        if len(chosen) == top_k:
            break
    return chosen


def format_line(result: Mapping[str, Any]) -> str:
    """One memory as a line: ``- (2026-01-02, session s1) user: text``."""
    day = str(result.get("created_at") or "")[:10]
    text = " ".join(str(result.get("content", "")).split())
    return f"- ({day}, session {result.get('session_id')}) {result.get('role')}: {text}"


def render(
    header: str,
    results: Sequence[Mapping[str, Any]],
    budget: int,
    count: Callable[[str], int],
) -> str | None:
    """The header and as many memory lines as fit ``budget`` tokens (as one message), or None."""
    lines: list[str] = []
    for result in results:
        candidate = "\n".join([header, *lines, format_line(result)])
        if count(candidate) <= budget:
            lines.append(format_line(result))
    if not lines:
        return None
    return "\n".join([header, *lines])
