"""The latency stage's spread timer keeps the sample counts, the operations taking turns within
each batch and the batches apart."""

from __future__ import annotations

import pytest

from memfuse_memory.bench import latency


def test_timed_spread_takes_every_sample_in_batches_with_pauses_between(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    monkeypatch.setattr(latency.time, "sleep", lambda seconds: events.append(f"pause{seconds}"))
    operations = {"a": lambda: events.append("a"), "b": lambda: events.append("b")}
    samples = latency.timed_spread(operations, 23, batches=5, pause=0.02)
    assert {name: len(values) for name, values in samples.items()} == {"a": 23, "b": 23}
    batches = "".join(events).split("pause0.02")
    assert batches == ["aaaaabbbbb", "aaaaabbbbb", "aaaaabbbbb", "aaaabbbb", "aaaabbbb"]
