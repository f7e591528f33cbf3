"""The LangChain and LangGraph examples run offline end to end and show recall across sessions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# the two runs share the machine's cores: one math thread each keeps them from contending
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def test_both_examples_run_and_recall_an_earlier_session(tmp_path):
    runs = {
        name: subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / f"{name}.py"), str(tmp_path / name)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for name in ("langchain_chat", "langgraph_memory")
    }
    outputs = {}
    for name, process in runs.items():
        stdout, stderr = process.communicate(timeout=180)
        assert process.returncode == 0, stderr[-3000:]
        assert "Traceback" not in stderr
        outputs[name] = stdout

    chat = outputs["langchain_chat"]
    tuesday = chat.split("== session tuesday")[1]
    assert "recalled [monday] Hi, I'm Alice. My cat is called Miso." in tuesday
    assert "== history monday: 4 messages ==" in chat
    assert "== history tuesday: 2 messages ==" in chat
    assert "    human: What is the name of my pet?" in chat.split("== history tuesday")[1]

    graph = outputs["langgraph_memory"]
    thread_2 = graph.split("== thread 2")[1]
    assert "recalled: my sister's birthday is on 3 March" in thread_2
    assert "('memories', 'alice'): 2 items" in graph
    assert (tmp_path / "langgraph_memory" / "messages.sqlite3").exists()


def test_agent_middleware_example_recalls_across_threads_and_never_across_users(tmp_path):
    process = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "langchain_agent_middleware.py"), str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=180,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    assert "Traceback" not in process.stderr
    alice = process.stdout.split("== thread tuesday (a new conversation) ==")[1].split("== thread tuesday of bob")[0]
    assert "memory given to the model" in alice
    assert "session monday) user: Hi, I'm Alice. My cat is called Miso." in alice
    bob = process.stdout.split("== thread tuesday of bob (another user) ==")[1].split("== stored rounds ==")[0]
    assert "memory given to the model" not in bob and "Miso" not in bob
    # the tool turn is stored as its question and final reply; every thread holds only its own turns
    assert "alice/monday: 4 messages" in process.stdout
    assert "alice/tuesday: 2 messages" in process.stdout
    assert "bob/tuesday: 2 messages" in process.stdout
