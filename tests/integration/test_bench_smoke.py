"""A tiny run of every benchmark, so the benchmark command keeps working (numbers are not checked)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memfuse_memory.bench import longmemeval
from memfuse_memory.bench.__main__ import main


def run(tmp_path: Path, *args: str) -> dict:
    assert main([*args, "--out", str(tmp_path)]) == 0
    return json.loads((tmp_path / "results.json").read_text())


def test_latency_smoke(tmp_path: Path) -> None:
    results = run(tmp_path, "latency", "--sizes", "60,120", "--repeat", "5")
    assert set(results["latency"]["sizes"]) == {"60", "120"}
    assert results["latency"]["sizes"]["120"]["stored messages"] >= 120
    assert results["latency"]["sizes"]["120"]["flush"]["count"] > 0
    assert "## Seed latency table" in (tmp_path / "REPORT.md").read_text()
    assert (tmp_path / "latency.png").stat().st_size > 1000


def test_throughput_smoke(tmp_path: Path) -> None:
    results = run(tmp_path, "throughput", "--rounds", "12")
    assert results["throughput"]["memfuse_rounds_per_s"] > 0 and results["throughput"]["ratio"] > 0
    assert "## Ingest throughput" in (tmp_path / "REPORT.md").read_text()


def test_longmemeval_smoke(tmp_path: Path) -> None:
    if not longmemeval.DATA.exists():
        pytest.skip(f"LongMemEval data not present at {longmemeval.DATA}")
    results = run(tmp_path, "quality", "--questions", "2", "--haystack-sessions", "2", "--variants", "bm25,default")
    variants = results["quality"]["variants"]
    assert set(variants) == {"bm25 (keyword only)", "default (message chunks, min-max fusion)"}
    for row in variants.values():
        assert 0.0 <= row["overall"]["session_recall@10"] <= 1.0
        assert row["timing"]["turns"] > 0
    assert (tmp_path / "quality.png").exists()
