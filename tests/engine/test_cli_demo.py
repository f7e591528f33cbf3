"""``memfuse-memory demo`` on the fakes: the report's shape, the pipeline stages, and re-runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from memfuse_memory import BlockingBufferService, MemFuseConfig
from memfuse_memory.cli import main
from memfuse_memory.cli.demo import load_sample


@pytest.fixture
def run_demo(
    make_memory: Callable[..., BlockingBufferService], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Callable[..., tuple[int, str]]:
    def factory(config: MemFuseConfig, *, needs_model: bool) -> BlockingBufferService:
        return make_memory(config=config, data_dir=config.storage.data_dir)

    def run(*extra: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(["demo", "--data-dir", str(tmp_path / "demo"), *extra], service_factory=factory)
        return code, capsys.readouterr().out

    return run


def test_demo_json_report_and_rerun(run_demo: Callable[..., tuple[int, str]]) -> None:
    sample = load_sample()
    code, out = run_demo("--json")
    assert code == 0
    report = json.loads(out)
    assert report["reset_messages"] == 0
    stages = report["stages"]
    assert stages[0]["stage"] == "start" and stages[-1]["stage"] == "after flush_all()"
    assert len(stages) == len(sample["sessions"]) + 2
    assert stages[-1]["round_buffer_rounds"] == 0 and stages[-1]["pending_embeddings"] == 0
    assert stages[-1]["stored_rounds"] == sum(len(s["rounds"]) for s in sample["sessions"])
    assert stages[1]["sqlite_messages"] == 2 * len(sample["sessions"][0]["rounds"])
    assert [a["question"] for a in report["answers"]] == [q["question"] for q in sample["questions"]]
    assert all(a["results"] and len(a["results"]) <= 3 for a in report["answers"])
    assert report["history"]["session_id"] == sample["sessions"][1]["session_id"]
    assert len(report["history"]["messages"]) == 2 * len(sample["sessions"][1]["rounds"])

    code, out = run_demo("--json")
    assert code == 0
    again = json.loads(out)
    assert again["reset_messages"] == 46  # the previous run's messages, deleted first
    assert again["stats"]["storage"]["messages"] == 46


def test_demo_human_output_has_every_part(run_demo: Callable[..., tuple[int, str]]) -> None:
    code, out = run_demo("--user", "someone")
    assert code == 0
    for part in ("Rounds moving through the buffers", "after flush_all()", "What is my dog's name?",
                 "History of session", "memfuse-memory stats", "--user someone",
                 "~ it is among the top 3 but not first"):  # fmt: skip
        assert part in out, part


def test_demo_rerun_keeps_the_users_other_sessions(
    run_demo: Callable[..., tuple[int, str]],
    make_memory: Callable[..., BlockingBufferService],
    tmp_path: Path,
) -> None:
    assert run_demo("--json")[0] == 0
    memory = make_memory(data_dir=tmp_path / "demo")
    memory.add([{"role": "user", "content": "my own note"}], "notes", user_id="demo")
    memory.close()
    code, out = run_demo("--json")
    assert code == 0 and json.loads(out)["reset_messages"] == 46
    memory = make_memory(data_dir=tmp_path / "demo")
    notes = memory.get_messages_by_session("notes", user_id="demo")["data"]["messages"]
    assert [m["content"] for m in notes] == ["my own note"]
