"""The create_agent example runs offline: its tools write to MemFuseStore and recall by meaning."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from memfuse_memory.shared import resolve_service

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "langgraph_agent_store.py"


def test_agent_tools_write_and_read_the_store(tmp_path):
    spec = importlib.util.spec_from_file_location("langgraph_agent_store", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = example  # its dataclass looks itself up there
    spec.loader.exec_module(example)
    try:
        tools_said = example.main(str(tmp_path))
    finally:
        resolve_service(data_dir=tmp_path).close()
    assert tools_said[:2] == ["saved: My sister's birthday is on 3 March", "saved: I am allergic to peanuts"]
    first_recalled = tools_said[2].splitlines()[0]
    assert first_recalled.startswith("My sister's birthday is on 3 March (score ")
