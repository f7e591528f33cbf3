"""The command line as a user runs it: ``python -m memfuse_memory`` on the real MiniLM, Chroma and SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "memfuse_memory", *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=cwd,
        env=env,
        check=False,
    )


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One demo run shared by the tests below (loading the model costs seconds per process)."""
    folder = tmp_path_factory.mktemp("cli")
    report = as_json(run_cli("demo", "--json", "--data-dir", str(folder / "data"), cwd=folder))
    return folder, report


def test_demo_answers_from_every_session(demo_dir: tuple[Path, dict[str, Any]]) -> None:
    _, report = demo_dir
    assert report["stages"][-1]["stage"] == "after flush_all()"
    assert report["stages"][-1]["stored_rounds"] == 23 and report["stages"][-1]["round_buffer_rounds"] == 0
    for answer in report["answers"]:
        assert answer["found_in_results"], (answer["question"], [r["content"] for r in answer["results"]])
    # each question's answer is among its first three hits, and the hits holding the answers cover every
    # session (the first hit may be a keyword neighbour: "named it Doughbi" for "What is my dog's name?")
    answered_from = set()
    for answer in report["answers"]:
        holding = [r for r in answer["results"][:3] if answer["expected"].lower() in r["content"].lower()]
        assert holding, (answer["question"], [r["content"] for r in answer["results"][:3]])
        answered_from.add(holding[0]["session_id"])
    assert answered_from == set(report["sessions"])
    assert report["stats"]["index_worker"]["failures"] == 0


def test_history_and_stats_json(demo_dir: tuple[Path, dict[str, Any]]) -> None:
    folder, _ = demo_dir
    data = ["--data-dir", str(folder / "data"), "--json"]
    history = as_json(run_cli("history", "2026-03-16-work", "--user", "demo", *data, cwd=folder))
    assert len(history["messages"]) == 12 and history["messages"][0]["content"].startswith("At work")
    stats = as_json(run_cli("stats", *data, cwd=folder))
    assert stats["storage"]["messages"] == 46 and stats["storage"]["pending_rounds"] == 0


def test_export_import_round_trip(demo_dir: tuple[Path, dict[str, Any]]) -> None:
    folder, _ = demo_dir
    first = run_cli("export", "--all-users", "--data-dir", str(folder / "data"), cwd=folder)
    assert first.returncode == 0, first.stderr
    archive = folder / "memory.jsonl"
    archive.write_text(first.stdout, encoding="utf-8")
    summary = as_json(run_cli("import", str(archive), "--data-dir", str(folder / "copy"), "--json", cwd=folder))
    assert summary["messages"] == 46 and summary["rounds"] == 23
    second = run_cli("export", "--all-users", "--data-dir", str(folder / "copy"), cwd=folder)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout  # byte for byte: ids, round grouping, times, metadata
    copy = as_json(run_cli("stats", "--data-dir", str(folder / "copy"), "--json", cwd=folder))["storage"]
    assert copy["rounds"] == 23 and copy["pending_rounds"] == 0  # every imported round is in the vector store


def test_demo_runs_again_in_the_same_folder(demo_dir: tuple[Path, dict[str, Any]]) -> None:
    folder, _ = demo_dir
    again = run_cli("demo", "--data-dir", str(folder / "data"), cwd=folder)
    assert again.returncode == 0, again.stderr
    assert "Removed 46 messages of a previous demo run" in again.stdout
    assert "after flush_all()" in again.stdout and "Traceback" not in again.stderr


def test_bad_input_gives_one_line_and_exit_code(tmp_path: Path) -> None:
    missing = run_cli("ingest", "nope.json", "--data-dir", "d", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.strip() == "error: file not found: nope.json"
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"role": "user", "content": "ok"}\n{"role": "user" "content": "x"}\n', encoding="utf-8")
    bad = run_cli("ingest", str(broken), "--data-dir", "d", cwd=tmp_path)
    assert bad.returncode == 2 and "line 2, column 17" in bad.stderr and "Traceback" not in bad.stderr
    unknown = run_cli("query", "x", "--colour", cwd=tmp_path)
    assert unknown.returncode == 2 and "unrecognized arguments: --colour" in unknown.stderr
    config = tmp_path / "bad.yaml"
    config.write_text("storage:\n  sqlite_synchronous: SOMETIMES\n", encoding="utf-8")
    invalid = run_cli("config", "validate", str(config), cwd=tmp_path)
    assert invalid.returncode == 3 and "storage.sqlite_synchronous" in invalid.stderr
    assert not (tmp_path / "d").exists()  # nothing was created for rejected input
