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


def _row(turn_ranks: list[int], turn_correct: int, official: dict | None = None) -> dict:
    user_turns = {
        "turns": 20,
        "turn_correct": 1,
        "turn_ranks": [2],
        "session_correct": 1,
        "session_first": [0, 1, 2, 3, 4, 5],
        "session_first_correct": [2],
        "session_hits": [2, 6],
        "session_turns": 4,
    }
    return {
        "qid": "q",
        "type": "t",
        "turn_correct": turn_correct,
        "turn_ranks": turn_ranks,
        "session_correct": 2,
        "session_ranks": [0, 7],
        "official": {**user_turns, **(official or {})},
    }


def test_recall_all_needs_every_item_recall_any_one() -> None:
    scored = metrics(_row([0, 6], 2, {"turn_correct": 2, "turn_ranks": [0, 6]}))
    assert scored["turn_recall_any@5"] == 1.0 and scored["turn_recall@5"] == 0.5
    assert scored["turn_recall_all@5"] == 0.0 and scored["turn_recall_all@10"] == 1.0
    assert scored["session_recall@5"] == 0.5 and scored["session_recall@10"] == 1.0


def test_session_level_reads_the_turn_ranking_to_k_distinct_sessions() -> None:
    # k=5: distinct sessions first seen at 0..4, so the prefix is 5 turns; the correct one is at 2
    scored = metrics(_row([2], 1), ks=(5,))
    assert scored["session_recall_all@5"] == 1.0
    # turns of the correct session at 2 (inside) and 6 (outside): DCG 1/log2(3) over an ideal of 4 ones
    ideal = 1 + 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert math.isclose(scored["session_ndcg_any@5"], (1 / math.log2(3)) / ideal)


def test_no_correct_user_turn_scores_as_the_official_code_does() -> None:
    # evidence only in assistant turns: the official corpus holds no correct item
    row = _row([1], 1, {"turn_correct": 0, "turn_ranks": [], "session_correct": 0, "session_first_correct": []})
    scored = metrics(row)
    assert scored["turn_recall_all@5"] == 1.0 and scored["turn_ndcg_any@5"] == 0.0
    assert scored["session_recall_all@5"] == 1.0
    assert scored["turn_recall@5"] == 1.0  # ours counts the assistant evidence turn


def test_a_question_without_evidence_turns_has_none_of_our_turn_metrics() -> None:
    row = _row([], 0)
    assert metrics(row)["turn_recall@5"] is None
    assert math.isnan(lme_metrics.mean([row], "turn_recall@5"))
    assert lme_metrics.mean([row], "session_recall@10") == 1.0


def test_journal_resumes_rows_of_the_same_settings_only(tmp_path: Path) -> None:
    path = tmp_path / "v.jsonl"
    Journal(path, "settings A").add({**_row([0], 1), "qid": "q1"})
    with path.open("a") as handle:
        handle.write('{"qid": "q2", "cut off')  # a line a killed run left half-written
    assert set(Journal(path, "settings A").rows) == {"q1"}
    assert Journal(path, "settings B").rows == {}
