"""Fuse a keyword ranking and a vector ranking into one score per message.

Raw BM25 and cosine scores live on different scales and are never compared directly: each
ranking is either min-max normalised to [0, 1] (``minmax``), turned into reciprocal ranks
(``rrf``), or standardised against its own candidates' mean and spread (``zscore``: a ranking whose
best candidates stand far above the rest weighs more than one whose scores are flat), then the two
are combined with their weights. A min-max score is relative to this query's candidates: 1.0 is
the best of both rankings, 0.0 the weakest of every ranking that found it (``min_score`` on a
query cuts such hits off); z-score sums are min-max scaled into [0, 1] the same way.
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


def _zscores(scores: Mapping[str, float]) -> dict[str, float]:
    """Standard scores shifted so the ranking's weakest candidate is 0 (the value of a miss)."""
    if not scores:
        return {}
    values = list(scores.values())
    mean = sum(values) / len(values)
    spread = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    if spread == 0:
        return dict.fromkeys(scores, 1.0)
    low = min(values)
    return {key: (value - low) / spread for key, value in scores.items()}


def _reciprocal_ranks(scores: Mapping[str, float]) -> dict[str, float]:
    ranked = sorted(scores, key=lambda key: -scores[key])
    return {key: 1.0 / (RRF_K + rank) for rank, key in enumerate(ranked, start=1)}


def fuse(
    keyword: Mapping[str, float],
    vector: Mapping[str, float],
    *,
    method: Literal["minmax", "rrf", "zscore"],
    keyword_weight: float,
    vector_weight: float,
) -> list[Hit]:
    """One :class:`Hit` per message id found by either ranking, best fused score first.

    ``keyword`` maps message id to BM25 (higher is better); ``vector`` to cosine similarity (a
    candidate at or below 0 shares no meaning with the query and is left out).
    Ties keep the keyword ranking's order, then the vector ranking's.
    """
    vector = {key: value for key, value in vector.items() if value > 0}  # no shared meaning at all
    normalise = {"minmax": _minmax, "rrf": _reciprocal_ranks, "zscore": _zscores}[method]
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
    if method == "zscore":
        scaled = _minmax({key: hit.score for key, hit in hits.items()})
        for key, hit in hits.items():
            hit.score = scaled[key]
    return sorted(hits.values(), key=lambda hit: -hit.score)
