"""A tiny run of the LangGraph store benchmark stage, so its command keeps working (numbers are not checked)."""

from __future__ import annotations

import json
from pathlib import Path

from memfuse_memory.bench.__main__ import main


def test_store_stage_smoke(tmp_path: Path) -> None:
    assert main(["store", "--store-sizes", "20,60", "--repeat", "4", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["store"]["sizes"]) == {"20", "60"}
    assert set(results["store"]["sizes"]["60"]) == {"get", "put new", "replace", "delete", "put indexed"}
    assert "## LangGraph store (MemFuseStore) latency" in (tmp_path / "REPORT.md").read_text()
