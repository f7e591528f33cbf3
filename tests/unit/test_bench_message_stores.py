"""The side-by-side latency of message stores: the stores run at once in one process, and the
section gives PostgreSQL's p50 as ratios to SQLite's with the round-trip floor."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from memfuse_memory.bench import message_stores


def _result(add: float, cold: float) -> dict[str, Any]:
    return {
        "sizes": {1000: {"add": {"p50": add, "p99": add * 10}, "cold query": {"p50": cold}}},
        "baselines": {"sqlite insert+commit": {"p50": 0.01}},
    }


def test_measure_together_runs_every_store_in_one_call_and_annotates_each(monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = {"sqlite": None, "postgres": {"storage": {"message_store": {"dsn": "x", "synchronous_commit": "on"}}}}

    @contextmanager
    def fake_configs(choice: str, dsn: str) -> Iterator[dict[str, Any]]:
        yield chosen

    monkeypatch.setattr(message_stores, "configs", fake_configs)
    monkeypatch.setattr(message_stores, "round_trip_floor", lambda settings: {"p50": 0.4})
    calls: list[list[str]] = []

    def run(configs: dict[str, Any]) -> dict[str, dict[str, Any]]:
        calls.append(list(configs))
        return {"sqlite": _result(0.3, 20.0), "postgres": _result(0.8, 21.0)}

    results = message_stores.measure_together("both", "", run)
    assert calls == [["sqlite", "postgres"]], "one run holding both stores"
    assert results["postgres"]["baselines"]["postgres insert+commit"] == {"p50": 0.4}
    assert "postgres insert+commit" not in results["sqlite"]["baselines"]
    assert all(r["interleaved"] and len(r["load_average"]) == 2 for r in results.values())
    text = "\n".join(message_stores.section(results))
    assert "| 1,000 | add | 0.300 | 0.800 (2.67x) |" in text
    assert "| 1,000 | cold query | 20.000 | 21.000 (1.05x) |" in text
    assert "ran in one process at once" in text and "p50: postgres 0.400 ms" in text
