"""Fuse a keyword ranking and a vector ranking into one score per message.

Raw BM25 and cosine scores live on different scales and are never compared directly: each
ranking is either min-max normalised to [0, 1] (``minmax``) or turned into reciprocal ranks
(``rrf``), then the two are combined with their weights. A min-max score is relative to this
query's candidates: 1.0 is the best of both rankings, 0.0 the weakest of every ranking that found
it (``min_score`` on a query cuts such hits off).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from memfuse_memory.models import Hit

RRF_K = 60


def _minmax(scores: Mapping[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high == low:
        return dict.fromkeys(scores, 1.0)
    return {key: (value - low) / (high - low) for key, value in scores.items()}


def _reciprocal_ranks(scores: Mapping[str, float]) -> dict[str, float]:
    ranked = sorted(scores, key=lambda key: -scores[key])
    return {key: 1.0 / (RRF_K + rank) for rank, key in enumerate(ranked, start=1)}


def fuse(
    keyword: Mapping[str, float],
    vector: Mapping[str, float],
    *,
    method: Literal["minmax", "rrf"],
    keyword_weight: float,
    vector_weight: float,
) -> list[Hit]:
    """One :class:`Hit` per message id found by either ranking, best fused score first.

    ``keyword`` maps message id to BM25 (higher is better); ``vector`` to cosine similarity (a
    candidate at or below 0 shares no meaning with the query and is left out).
    Ties keep the keyword ranking's order, then the vector ranking's.
    """
    vector = {key: value for key, value in vector.items() if value > 0}  # no shared meaning at all
    normalise = _minmax if method == "minmax" else _reciprocal_ranks
    kw, vec = normalise(keyword), normalise(vector)
    total = keyword_weight + vector_weight or 1.0
    hits: dict[str, Hit] = {}
    for key in [*keyword, *vector]:
        if key in hits:
            continue
        hit = Hit(message_id=key, keyword=keyword.get(key), vector=vector.get(key))
        hit.score = (keyword_weight * kw.get(key, 0.0) + vector_weight * vec.get(key, 0.0)) / total
        hit.retrieved_by = [name for name, part in (("keyword", keyword), ("vector", vector)) if key in part]
        hits[key] = hit
    return sorted(hits.values(), key=lambda hit: -hit.score)
