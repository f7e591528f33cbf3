"""The side-by-side latency of message stores: alternated passes keep each operation's best pass."""

from __future__ import annotations

from typing import Any

from memfuse_memory.bench import message_stores


def _result(add: float, cold: float, floor: float, load: float) -> dict[str, Any]:
    return {
        "sizes": {1000: {"add": {"p50": add, "p99": add * 10}, "cold query": {"p50": cold}, "stored messages": 1002}},
        "baselines": {"sqlite insert+commit": {"p50": floor}},
        "load_average": [load, load + 1],
    }


def test_best_of_keeps_each_operation_from_the_pass_with_the_lowest_p50() -> None:
    best = message_stores.best_of([_result(0.9, 20.0, 0.02, 1.0), _result(0.7, 25.0, 0.01, 2.0)])
    size = best["sizes"][1000]
    assert size["add"] == {"p50": 0.7, "p99": 7.0}  # the whole timing of the better pass, not a mix
    assert size["cold query"] == {"p50": 20.0}
    assert size["stored messages"] == 1002
    assert size["p50_by_pass"] == {"add": [0.9, 0.7], "cold query": [20.0, 25.0]}
    assert best["baselines"]["sqlite insert+commit"] == {"p50": 0.01}
    assert best["passes"] == 2 and best["load_average"] == [1.0, 2.0, 2.0, 3.0]


def test_one_pass_is_returned_unchanged() -> None:
    only = _result(0.9, 20.0, 0.02, 1.0)
    assert message_stores.best_of([only]) is only


def test_the_section_says_the_stores_took_turns() -> None:
    sqlite = message_stores.best_of([_result(0.3, 20.0, 0.02, 1.0), _result(0.4, 21.0, 0.02, 1.0)])
    postgres = message_stores.best_of([_result(0.9, 22.0, 0.02, 1.0), _result(0.8, 23.0, 0.02, 1.0)])
    text = "\n".join(message_stores.section({"sqlite": sqlite, "postgres": postgres}))
    assert "| 1,000 | add | 0.300 | 0.800 (2.67x) |" in text
    assert "took turns, 2 runs each" in text and "sqlite 1.0-2.0, 1.0-2.0" in text
