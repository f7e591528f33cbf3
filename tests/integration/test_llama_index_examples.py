"""examples/llama_index_chat.py runs offline in its own process and does what it says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from llama_index.memory.memfuse import MemFuseMemory
from memfuse_memory.shared import resolve_service

ROOT = Path(__file__).resolve().parents[2]


def test_llama_index_example_runs_offline_and_recalls_across_sessions(tmp_path: Path) -> None:
    data_dir = tmp_path / "example"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "llama_index_chat.py"), "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    session_2 = out[out.index("== session 2 ==") : out.index("== agent ==")]
    assert "[system] You are a friendly assistant." in session_2
    assert "session monday) user: I adopted a cat named Miso last spring." in session_2
    assert "[user] What is my cat called?" in session_2
    agent = out[out.index("== agent ==") : out.index("== retriever ==")]
    assert "agent answer: Tool calls complete." in agent
    assert "stored [user] What is the weather like for my run?" in agent
    assert "stored [assistant] calls ['get_weather']" in agent
    assert "stored [tool] It is sunny in Lisbon." in agent
    assert "[monday] I am training for a marathon in Lisbon." in out[out.index("== retriever ==") :]

    # the example's process has exited; a new engine on its data directory sees what it stored
    memory = MemFuseMemory.from_defaults(session_id="monday", user_id="alice", data_dir=data_dir)
    try:
        assert [m.content for m in memory.get_all()][::2] == [
            "I adopted a cat named Miso last spring.",
            "I am training for a marathon in Lisbon.",
        ]
    finally:
        resolve_service(data_dir=data_dir).close()
