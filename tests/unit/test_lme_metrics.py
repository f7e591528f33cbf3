"""LongMemEval's retrieval metrics, checked against hand-computed values of its definitions."""

from __future__ import annotations

import math
from pathlib import Path

from memfuse_memory.bench import lme_metrics
from memfuse_memory.bench.lme_metrics import Journal, metrics, ndcg_any, ranks


def test_ranks_are_first_positions_of_the_wanted_items() -> None:
    assert ranks(["x", "a", "y", "b", "a"], {"a", "b", "z"}) == [1, 3]


def test_official_ndcg_leaves_the_first_two_ranks_undiscounted() -> None:
    # one correct item at rank 2 (0-based 1): DCG = 0 + 1/log2(2) = 1 = the ideal DCG
    assert ndcg_any([1], 1, 5) == 1.0
    # two correct, at ranks 1 and 3: (1 + 1/log2(3)) / (1 + 1/log2(2))
    assert math.isclose(ndcg_any([0, 2], 2, 5), (1 + 1 / math.log2(3)) / 2)
    assert ndcg_any([7], 1, 5) == 0.0


def test_recall_all_needs_every_item_recall_any_one() -> None:
    row = {"type": "t", "turn_correct": 2, "turn_ranks": [0, 6], "session_correct": 1, "session_ranks": [0]}
    scored = metrics(row)
    assert scored["turn_recall_any@5"] == 1.0 and scored["turn_recall_all@5"] == 0.0
    assert scored["turn_recall@5"] == 0.5 and scored["turn_recall_all@10"] == 1.0
    assert scored["session_recall_all@5"] == 1.0


def test_a_question_without_evidence_turns_has_no_turn_metrics() -> None:
    row = {"type": "t", "turn_correct": 0, "turn_ranks": [], "session_correct": 1, "session_ranks": [3]}
    assert metrics(row)["turn_recall@5"] is None
    assert lme_metrics.mean([row], "turn_recall@5") != lme_metrics.mean([row], "turn_recall@5")  # nan
    assert lme_metrics.mean([row], "session_recall_all@5") == 1.0


def test_journal_resumes_rows_of_the_same_settings_only(tmp_path: Path) -> None:
    path = tmp_path / "v.jsonl"
    row = {"qid": "q1", "type": "t", "turn_correct": 1, "turn_ranks": [0], "session_correct": 1, "session_ranks": [0]}
    Journal(path, "settings A").add(row)
    with path.open("a") as handle:
        handle.write('{"qid": "q2", "cut off')  # a line a killed run left half-written
    assert set(Journal(path, "settings A").rows) == {"q1"}
    assert Journal(path, "settings B").rows == {}
