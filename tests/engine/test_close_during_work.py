"""Closing a service while queries and adds run in other threads: the process survives (a
segmentation fault shows as the subprocess's return code) and nothing acknowledged is lost."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_close_during_queries_and_adds_survives_and_loses_nothing() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "integrations")])}
    command = [sys.executable, "-m", "tests.engine.close_worker", "12"]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"return code {done.returncode}: {done.stderr[-2000:]}"
    line = next(line for line in done.stdout.splitlines() if line.startswith("[close-during-work]"))
    print(line)
    counts = {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", line)}
    assert counts["closes"] == 12
    assert counts["adds"] > 0 and counts["acknowledged"] == counts["adds"]
    assert counts["lost"] == 0
