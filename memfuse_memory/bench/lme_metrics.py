"""LongMemEval's retrieval metrics, computed from where each question's evidence landed in a ranking.

A question's row keeps the 0-based ranks of its evidence turns in the returned ranking (top 50) and
of its answer sessions in the ranking of distinct sessions (each session at its best turn), so every
metric at every k can be computed again later, and a run can be resumed from its rows.

The official definitions (LongMemEval, ``src/retrieval/eval_utils.py`` and
``src/evaluation/print_retrieval_metrics.py``; abstention questions are left out):

- ``recall_any@k``: 1 if any correct item is in the top k, else 0;
- ``recall_all@k``: 1 if every correct item is in the top k, else 0;
- ``ndcg_any@k``: DCG of the top k over the ideal DCG, with DCG = rel_1 + sum_{i>=2} rel_i / log2(i)
  (the first two ranks undiscounted, as ``dcg`` in ``eval_utils.py`` computes it);
- session level from a turn ranking (``evaluate_retrieval_turn2session``): the turn ranking is read
  until it holds k distinct sessions, which are scored as a session ranking.

Ours beside them: turn ``recall@k`` is the share of evidence turns in the top k.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

KS = (5, 10)
OFFICIAL = [f"{level}_{name}@{k}" for level in ("turn", "session") for name in ("recall_all", "ndcg_any") for k in KS]
OURS = ["turn_recall@5", "turn_recall@10", "turn_recall_any@5", "session_recall@5", "session_recall@10"]
README_FLOOR = {
    "turn_recall@5": 0.685,
    "turn_recall@10": 0.779,
    "turn_recall_any@5": 0.808,
    "session_recall@5": 0.918,
    "session_recall@10": 0.949,
}
"""Plain BM25 over all 469 questions, from the data's README (it gives no other metric)."""
METRICS = [*OURS, *OFFICIAL]


def ranks(ranked: list[str], wanted: Iterable[str]) -> list[int]:
    """0-based positions of the wanted items in the ranking (those not found are left out)."""
    position = {item: i for i, item in reversed(list(enumerate(ranked)))}
    return sorted(position[item] for item in wanted if item in position)


def _dcg(relevances: list[int]) -> float:
    if not relevances:
        return 0.0
    return relevances[0] + sum(rel / math.log2(i) for i, rel in enumerate(relevances[1:], start=2))


def ndcg_any(found: list[int], correct: int, k: int) -> float:
    """Official NDCG@k of a ranking whose correct items sit at ``found`` (0-based), ``correct`` in all."""
    ideal = _dcg([1] * min(k, correct))
    if not ideal:
        return 0.0
    return _dcg([1 if i in set(found) else 0 for i in range(k)]) / ideal


def _level(found: list[int], correct: int, k: int) -> dict[str, float]:
    inside = sum(1 for rank in found if rank < k)
    return {
        f"recall_any@{k}": float(inside > 0),
        f"recall_all@{k}": float(inside == correct),
        f"recall@{k}": inside / correct,
        f"ndcg_any@{k}": ndcg_any(found, correct, k),
    }


def metrics(row: dict[str, Any], ks: Iterable[int] = KS) -> dict[str, float | None]:
    """Every metric of one question row; turn metrics are None for a question with no evidence turn."""
    out: dict[str, float | None] = {}
    for k in ks:
        for level in ("turn", "session"):
            correct = row[f"{level}_correct"]
            scored = _level(row[f"{level}_ranks"], correct, k) if correct else None
            for name in ("recall_any", "recall_all", "recall", "ndcg_any"):
                out[f"{level}_{name}@{k}"] = scored[f"{name}@{k}"] if scored else None
    return out


def mean(rows: list[dict[str, Any]], key: str, ks: Iterable[int] = KS) -> float:
    """Mean of one metric over the rows that define it (nan for none)."""
    values = [v for row in rows if (v := metrics(row, ks)[key]) is not None]
    return sum(values) / len(values) if values else float("nan")


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of every metric, overall and per question type, and turn recall at k = 1..50 for the plot."""
    types = sorted({row["type"] for row in rows})
    return {
        "questions": len(rows),
        "overall": {m: mean(rows, m) for m in METRICS},
        "by_type": {t: {m: mean([r for r in rows if r["type"] == t], m) for m in METRICS} for t in types},
        "recall_at_k": {k: mean(rows, f"turn_recall@{k}", (k,)) for k in range(1, 51)},
    }


class Journal:
    """Per-question rows of one variant in a JSONL file, appended as each question finishes."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.rows: dict[str, dict[str, Any]] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut off by a killed run
                    continue
                if row.get("fingerprint") == fingerprint:
                    self.rows[row["qid"]] = row

    def add(self, row: dict[str, Any]) -> None:
        row = {**row, "fingerprint": self.fingerprint}
        self.rows[row["qid"]] = row
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
