"""A soft time boost: fused hits whose message time fits the query's :class:`TimeHint` move up.

Never a filter: every hit stays, only scores change (then the order). The boost is a share of
the best fused score, so it means the same under min-max and reciprocal-rank fusion, and it
closes that share of the gap to 1.0, so a boosted score stays within [0, 1] like every score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from memfuse_memory.models import Hit
from memfuse_memory.ranking.time_expressions import TimeHint


def _closeness(moment: datetime, start: datetime, end: datetime) -> float:
    """1 inside [start, end), then falling with the distance, in units of the window's length."""
    if start <= moment < end:
        return 1.0
    distance = (start - moment) if moment < start else (moment - end)
    scale = max((end - start).total_seconds(), 86_400.0)
    return 1.0 / (1.0 + distance.total_seconds() / scale) ** 2


def time_fit(hint: TimeHint, moment: datetime, first: datetime, last: datetime) -> float:
    """How well a message time fits the hint, in [0, 1]; ``first``/``last`` span the candidates."""
    fit = 0.0
    if hint.start is not None and hint.end is not None:
        fit += hint.confidence * _closeness(moment, hint.start, hint.end)
    if hint.order is not None and last > first:
        position = (moment - first) / (last - first)
        fit += hint.order_confidence * (position if hint.order == "latest" else 1.0 - position)
    return min(fit, 1.0)


def boost(hits: Sequence[Hit], times: Mapping[str, datetime], hint: TimeHint, weight: float) -> list[Hit]:
    """The same hits, each score moved toward 1.0 by ``weight`` x best score x its time fit, best first.

    Hits without a known time keep their score. ``weight`` 0 or an empty hint changes nothing.
    """
    known = [times[hit.message_id] for hit in hits if hit.message_id in times]
    if weight <= 0 or hint.empty or not known:
        return list(hits)
    top = max((hit.score for hit in hits), default=0.0) or 1.0
    first, last = min(known), max(known)
    for hit in hits:
        moment = times.get(hit.message_id)
        if moment is not None:
            share = min(1.0, weight * top * time_fit(hint, moment, first, last))
            hit.score += share * (1.0 - min(hit.score, 1.0))
    return sorted(hits, key=lambda hit: -hit.score)
