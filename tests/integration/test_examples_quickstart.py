"""examples/quickstart.py runs end to end, offline, and prints what it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_quickstart_runs(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "staying in Alfama" in out.split("async  query: What does my pet eat?")[0]
    assert "salmon pâté" in out.split("blocking history")[0]
    assert "visit Sofia" in out.split("blocking query: Who am I visiting in Porto?")[1]
    assert "5 messages in 3 rounds stored, 0 pending" in out
    assert "forgot user alice: 5 messages deleted" in out
    assert list(tmp_path.iterdir()) == []  # the example cleans up after itself
