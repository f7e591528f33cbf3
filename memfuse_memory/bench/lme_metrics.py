"""LongMemEval's retrieval metrics, computed from where each question's evidence landed in a ranking.

A question's row keeps the 0-based ranks of its evidence in the returned ranking (top 50), so every
metric at every k can be computed again later, and a run can be resumed from its rows.

The official metrics follow LongMemEval's code (``src/retrieval/eval_utils.py``,
``src/retrieval/run_retrieval.py`` and ``src/evaluation/print_retrieval_metrics.py``, MIT): the
turn-level corpus is the user turns (so our ranking is read with assistant turns left out), the
correct turns are the user turns marked ``has_answer``, abstention questions are left out, and

- ``recall_all@k``: 1 if every correct item is in the top k, else 0 (1 when there is none, as
  Python's ``all`` of nothing; ``recall_any@k`` is then 0);
- ``ndcg_any@k``: DCG of the top k over the ideal DCG, DCG = rel_1 + sum_{i>=2} rel_i / log2(i)
  (the first two ranks undiscounted, as ``dcg`` computes it); 0 when there is no correct item;
- session level from the turn ranking (``evaluate_retrieval_turn2session``): correct sessions are
  those of the correct turns; the ranking is read to the shortest prefix holding k distinct sessions
  (``effective_k``), recall counts the sessions in it, and NDCG scores each turn of it by whether its
  session is correct against an ideal of ``min(effective_k, user turns of correct sessions)``.

Ours beside them, over all turns (user and assistant): ``turn_recall@k`` is the share of evidence
turns in the top k, ``turn_recall_any@5`` is hit@5, ``session_recall@k`` the share of
``answer_session_ids`` among the first k distinct sessions.
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
METRICS = [*OURS, *OFFICIAL]
README_FLOOR = {
    "turn_recall@5": 0.685,
    "turn_recall@10": 0.779,
    "turn_recall_any@5": 0.808,
    "session_recall@5": 0.918,
    "session_recall@10": 0.949,
}
"""Plain BM25 over all 469 questions, from the data's README (it gives no other metric)."""


def ranks(ranked: list[str], wanted: Iterable[str]) -> list[int]:
    """0-based positions of the wanted items in the ranking (those not found are left out)."""
    position = {item: i for i, item in reversed(list(enumerate(ranked)))}
    return sorted(position[item] for item in wanted if item in position)


def _dcg(relevances: list[int]) -> float:
    if not relevances:
        return 0.0
    return relevances[0] + sum(rel / math.log2(i) for i, rel in enumerate(relevances[1:], start=2))


def ndcg_any(found: Iterable[int], ideal: int, k: int) -> float:
    """Official NDCG@k of a ranking with relevant items at ``found`` (0-based), ``ideal`` of them at best."""
    best = _dcg([1] * min(k, ideal))
    if not best:
        return 0.0
    hits = set(found)
    return _dcg([1 if i in hits else 0 for i in range(k)]) / best


def _official(row: dict[str, Any], k: int) -> dict[str, float]:
    turn_ranks, correct = row["turn_ranks"], row["turn_correct"]
    first = row["session_first"]
    effective = first[k - 1] + 1 if len(first) >= k else row["turns"]
    inside = sum(1 for rank in row["session_first_correct"] if rank < effective)
    return {
        f"turn_recall_all@{k}": float(sum(1 for rank in turn_ranks if rank < k) == correct),
        f"turn_ndcg_any@{k}": ndcg_any(turn_ranks, correct, k),
        f"session_recall_all@{k}": float(inside == row["session_correct"]),
        f"session_ndcg_any@{k}": ndcg_any(row["session_hits"], row["session_turns"], effective),
    }


def metrics(row: dict[str, Any], ks: Iterable[int] = KS) -> dict[str, float | None]:
    """Every metric of one question row; ours are None for a question with no evidence turn."""
    out: dict[str, float | None] = {}
    for k in ks:
        inside = sum(1 for rank in row["turn_ranks"] if rank < k)
        correct = row["turn_correct"]
        out[f"turn_recall@{k}"] = inside / correct if correct else None
        out[f"turn_recall_any@{k}"] = float(inside > 0) if correct else None
        out[f"session_recall@{k}"] = sum(1 for rank in row["session_ranks"] if rank < k) / row["session_correct"]
        out.update(_official(row["official"], k))
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
