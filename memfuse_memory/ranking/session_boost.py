"""A soft session boost: candidates from the sessions the whole candidate list points to move up.

The evidence for a question tends to sit together in one conversation: a session several strong
candidates come from is more likely to hold the answer than one a single candidate came from.
Each session's strength is the sum of its best ``depth`` fused scores, scaled so the strongest
session is 1; each hit's score becomes ``(1 - weight) * score + weight * strength * best score``.
Never a filter: every hit stays, and a score stays within [0, 1].
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from memfuse_memory.models import Hit

DEPTH = 3  # a session's best scores summed into its strength


def session_boost(hits: Sequence[Hit], sessions: Mapping[str, str], weight: float, depth: int = DEPTH) -> list[Hit]:
    """The same hits rescored toward their session's strength, best first (``weight`` 0: unchanged).

    ``sessions`` maps a message id to its session; hits of unknown session keep their score.
    """
    if weight <= 0 or not hits:
        return list(hits)
    scores: dict[str, list[float]] = defaultdict(list)
    for hit in hits:
        session = sessions.get(hit.message_id)
        if session is not None:
            scores[session].append(hit.score)
    strength = {session: sum(sorted(found, reverse=True)[:depth]) for session, found in scores.items()}
    strongest = max(strength.values(), default=0.0)
    if strongest <= 0:
        return list(hits)
    top = max(hit.score for hit in hits)
    for hit in hits:
        session = sessions.get(hit.message_id)
        if session is not None:
            hit.score = (1 - weight) * hit.score + weight * top * strength[session] / strongest
    return sorted(hits, key=lambda hit: -hit.score)
