"""The command line on the fakes: exit codes, --json output, ingest/query/history, export/import, forget."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from memfuse_memory import BlockingBufferService, MemFuseConfig
from memfuse_memory.cli import main
from memfuse_memory.cli.archive import EXPORT_FIELDS
from memfuse_memory.config import DEFAULT_CONFIG_PATH, load_config

SAMPLE = Path(__file__).resolve().parents[2] / "memfuse_memory" / "data" / "sample_conversation.json"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def json_lines(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines()]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def cli(
    make_memory: Callable[..., BlockingBufferService], capsys: pytest.CaptureFixture[str], data_dir: Path
) -> Callable[..., Result]:
    """Run the CLI in-process on the fake embedder and vector store; ``--data-dir`` is added."""
    opened: list[bool] = []

    def factory(config: MemFuseConfig, *, needs_model: bool) -> BlockingBufferService:
        opened.append(needs_model)
        return make_memory(config=config, data_dir=config.storage.data_dir)

    def run(*argv: str, data: bool = True) -> Result:
        capsys.readouterr()
        args = [*argv, "--data-dir", str(data_dir)] if data else list(argv)
        code = main(args, service_factory=factory)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    run.opened = opened  # type: ignore[attr-defined]
    return run


def ingest_sample(cli: Callable[..., Result]) -> dict[str, Any]:
    result = cli("ingest", str(SAMPLE), "--json")
    assert result.code == 0, result.err
    return result.json()


def test_ingest_summary_and_query_json(cli: Callable[..., Result]) -> None:
    summary = ingest_sample(cli)
    assert summary["rounds"] == 23 and summary["messages"] == 46 and summary["users"] == ["demo"]
    assert summary["sessions"][0]["session_id"] == "2026-03-02-pets"

    result = cli("query", "greyhound Biscuit", "--user", "demo", "--top-k", "2", "--json")
    assert result.code == 0
    data = result.json()
    assert data["total"] == 2 and len(data["results"]) == 2
    assert "Biscuit" in data["results"][0]["content"]
    assert {"score", "source", "retrieval", "session_id", "round_id"} <= data["results"][0].keys()


def test_query_scope_sort_and_time_range(cli: Callable[..., Result]) -> None:
    ingest_sample(cli)
    result = cli(
        "query",
        "Lisbon Porto train",
        "--user",
        "demo",
        "--session",
        "2026-03-09-travel",
        "--sort-by",
        "timestamp",
        "--order",
        "asc",
        "--since",
        "2026-03-09T19:33:00Z",
        "--json",
    )
    results = result.json()["results"]
    assert results, result.err
    assert {r["session_id"] for r in results} == {"2026-03-09-travel"}
    stamps = [r["created_at"] for r in results]
    assert stamps == sorted(stamps) and stamps[0] >= "2026-03-09T19:33:00Z"
    assert cli("query", "Lisbon", "--user", "nobody", "--json").json()["results"] == []


def test_query_table_output_and_bad_time(cli: Callable[..., Result]) -> None:
    ingest_sample(cli)
    table = cli("query", "Biscuit", "--user", "demo")
    assert table.code == 0 and "Biscuit" in table.out and "found by" in table.out
    bad = cli("query", "x", "--since", "yesterday-ish")
    assert bad.code == 2
    assert "since" in bad.err and "Traceback" not in bad.err


def test_history_and_stats(cli: Callable[..., Result]) -> None:
    ingest_sample(cli)
    history = cli("history", "2026-03-23-food", "--user", "demo", "--limit", "2", "--json").json()
    assert [m["content"][:8] for m in history["messages"]] == ["I also s", "Ha, Doug"]
    table = cli("history", "2026-03-23-food", "--user", "demo")
    assert "mushroom risotto" in table.out
    stats = cli("stats", "--json").json()
    assert stats["storage"]["messages"] == 46 and stats["storage"]["pending_rounds"] == 0
    assert "hybrid_buffer" in cli("stats").out
    assert cli.opened[-1] is False  # type: ignore[attr-defined]  # stats does not need the model up front


def test_export_import_round_trip_is_exact(cli: Callable[..., Result], tmp_path: Path) -> None:
    source = tmp_path / "rich.jsonl"
    lines = [
        {"session_id": "s1", "agent_id": "bot", "round_id": "r1", "role": "system", "content": "rules", "name": "cfg"},
        {"session_id": "s1", "agent_id": "bot", "round_id": "r1", "role": "user", "content": "héllo 👋",
         "id": "m-1", "created_at": "2026-01-02T03:04:05.123456Z", "metadata": {"tag": [1, 2.5, None], "ok": True}},
        {"session_id": "s1", "agent_id": "bot", "round_id": "r2", "role": "assistant", "content": "hi"},
        {"session_id": "s2", "role": "user", "content": "other session"},
    ]  # fmt: skip
    source.write_text("\n".join(json.dumps(line) for line in lines), encoding="utf-8")
    assert cli("ingest", str(source), "--user", "ann").code == 0
    ingest_sample(cli)

    assert cli("export").code == 2  # every user only when asked for
    first = cli("export", "--all-users")
    assert first.code == 0 and "exported 50 messages" in first.err
    exported = [json.loads(line) for line in first.out.splitlines()]
    assert len(exported) == 50 and all(tuple(row) == EXPORT_FIELDS for row in exported)
    hello = next(row for row in exported if row["id"] == "m-1")
    assert hello["created_at"] == "2026-01-02T03:04:05.123456Z"
    assert hello["metadata"] == {"tag": [1, 2.5, None], "ok": True} and hello["agent_id"] == "bot"
    archive = tmp_path / "memory.jsonl"
    archive.write_text(first.out, encoding="utf-8")

    other = tmp_path / "other"
    imported = cli("import", str(archive), "--json", "--data-dir", str(other), data=False)
    assert imported.code == 0, imported.err
    assert imported.json()["messages"] == 50 and imported.json()["rounds"] == 26
    second = cli("export", "--all-users", "--data-dir", str(other), data=False)
    assert second.out == first.out  # byte for byte: ids, round grouping, times, metadata

    again = cli("import", str(archive), "--data-dir", str(other), data=False)
    assert again.code == 2 and "already stored" in again.err and "--skip-existing" in again.err
    skipped = cli("import", str(archive), "--skip-existing", "--json", "--data-dir", str(other), data=False)
    assert skipped.code == 0 and skipped.json()["skipped_messages"] == 50 and skipped.json()["rounds"] == 0


def test_export_to_file_with_filters_and_no_overwrite(cli: Callable[..., Result], tmp_path: Path) -> None:
    ingest_sample(cli)
    target = tmp_path / "out.jsonl"
    result = cli("export", "--user", "demo", "--session", "2026-03-16-work", "-o", str(target), "--json")
    assert result.json() == {"file": str(target), "messages": 12, "rounds": 6, "sessions": 1}
    assert len(target.read_text(encoding="utf-8").splitlines()) == 12
    assert cli("export", "--user", "demo", "-o", str(target)).code == 2
    assert cli("export", "--user", "demo", "-o", str(target), "--force").code == 0


def test_import_rejects_non_export_lines_with_line_number(cli: Callable[..., Result], tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"role": "user", "content": "x"}\n', encoding="utf-8")
    result = cli("import", str(path))
    assert result.code == 2 and "line 1" in result.err and "not an export line" in result.err


def test_forget_session_then_user(cli: Callable[..., Result]) -> None:
    ingest_sample(cli)
    gone = cli("forget", "--user", "demo", "--session", "2026-03-02-pets", "--yes", "--json").json()
    assert gone["deleted_messages"] == 12
    assert cli("history", "2026-03-02-pets", "--user", "demo", "--json").json()["messages"] == []
    assert (
        cli("query", "Biscuit greyhound", "--user", "demo", "--session", "2026-03-02-pets", "--json").json()["results"]
        == []
    )
    assert cli("forget", "--user", "demo", "--yes").code == 0
    assert cli("stats", "--json").json()["storage"]["messages"] == 0


def test_forget_needs_a_target_and_confirmation(cli: Callable[..., Result]) -> None:
    assert cli("forget").code == 2
    refused = cli("forget", "--user", "demo")  # stdin is not a terminal under pytest
    assert refused.code == 2 and "--yes" in refused.err


def test_bad_input_exit_codes(cli: Callable[..., Result], tmp_path: Path) -> None:
    missing = cli("ingest", str(tmp_path / "nope.json"))
    assert missing.code == 2 and "file not found" in missing.err
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"role": "user", "content": "a"}\n{"role": \n', encoding="utf-8")
    bad_json = cli("ingest", str(broken), "--json")
    assert bad_json.code == 2 and "line 2" in bad_json.err
    assert bad_json.json()["error"]["exit_code"] == 2
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps([{"role": "user", "content": "x", "created_at": "not a time"}]), encoding="utf-8")
    rejected = cli("ingest", str(invalid))
    assert rejected.code == 2 and "created_at" in rejected.err
    assert "no memory in" in cli("stats").err  # nothing was written, not even an empty store


def test_unknown_option_and_command(cli: Callable[..., Result], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("stats", "--frobnicate").code == 2
    assert cli("fly", data=False).code == 2
    assert cli(data=False).code == 2
    assert main(["--version"]) == 0
    assert "memfuse-memory" in capsys.readouterr().out


def test_common_options_before_the_command(cli: Callable[..., Result], data_dir: Path) -> None:
    ingest_sample(cli)
    result = cli("--data-dir", str(data_dir), "--json", "stats", data=False)
    assert result.code == 0 and result.json()["storage"]["messages"] == 46


def test_config_show_and_validate(cli: Callable[..., Result], tmp_path: Path, data_dir: Path) -> None:
    shown = cli("config", "show", "--json").json()
    assert shown["storage"]["data_dir"] == str(data_dir)
    assert shown["buffer"]["round_buffer"]["max_size"] == 5
    good = tmp_path / "good.yaml"
    good.write_text("buffer:\n  round_buffer:\n    max_size: 3\n", encoding="utf-8")
    assert cli("config", "validate", str(good)).code == 0
    assert cli("config", "show", "--config", str(good), "--json").json()["buffer"]["round_buffer"]["max_size"] == 3
    assert "max_size: 3" in cli("config", "show", "--config", str(good)).out
    bad = tmp_path / "bad.yaml"
    bad.write_text("buffer:\n  round_bufer:\n    max_size: 0\n", encoding="utf-8")
    result = cli("config", "validate", str(bad), "--json")
    assert result.code == 3 and "round_bufer" in result.err
    assert result.json()["error"]["type"] == "ConfigError"
    assert cli("config", "validate", str(tmp_path / "absent.yaml")).code == 2
    assert cli("stats", "--config", str(bad)).code == 3


def test_config_show_defaults_prints_the_packaged_file_which_validates(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    shown = cli("config", "show", "--defaults")
    assert shown.code == 0 and shown.out == DEFAULT_CONFIG_PATH.read_text(encoding="utf-8")
    copy = tmp_path / "mine.yaml"
    copy.write_text(shown.out, encoding="utf-8")
    assert cli("config", "validate", str(copy)).code == 0
    assert load_config(copy) == MemFuseConfig()


@pytest.mark.parametrize(
    "argv", [("history", "s1"), ("stats",), ("query", "anything"), ("forget", "--user", "u", "--yes")]
)
def test_reading_commands_on_a_folder_without_memory_say_so_and_create_nothing(
    cli: Callable[..., Result], data_dir: Path, argv: tuple[str, ...]
) -> None:
    result = cli(*argv)
    assert result.code == 2 and "no memory in" in result.err and str(data_dir) in result.err
    assert not data_dir.exists(), "nothing is created in a misspelled folder"


def test_a_data_dir_that_is_a_file_is_named_with_exit_code_2(cli: Callable[..., Result], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for target in (blocker, blocker / "below"):
        result = cli("ingest", str(SAMPLE), "--data-dir", str(target), data=False)
        assert result.code == 2 and str(blocker) in result.err and "Traceback" not in result.err


def test_ingest_twice_stores_nothing_twice_unless_allowed(cli: Callable[..., Result], tmp_path: Path) -> None:
    first = ingest_sample(cli)
    again = cli("ingest", str(SAMPLE), "--json")
    assert again.code == 0 and again.json()["messages"] == 0 and again.json()["skipped_messages"] == 46
    assert cli("stats", "--json").json()["storage"]["messages"] == first["messages"] == 46
    grown = tmp_path / "grown.jsonl"
    lines = [
        {"role": "user", "content": "ok"},
        {"role": "assistant", "content": "fine"},
        {"id": "given-1", "role": "user", "content": "ok"},
    ]
    grown.write_text("\n".join(json.dumps(line) for line in lines[:2]) + "\n", encoding="utf-8")
    assert cli("ingest", str(grown), "--json").json()["messages"] == 2
    grown.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    added = cli("ingest", str(grown), "--json").json()
    assert added["messages"] == 1 and added["skipped_messages"] == 2, "only the new line, by its own id"
    duplicated = cli("ingest", str(SAMPLE), "--allow-duplicates", "--json")
    assert duplicated.code == 0 and duplicated.json()["messages"] == 46
    assert cli("stats", "--json").json()["storage"]["messages"] == 46 + 3 + 46


def test_stats_shows_what_is_stored_then_labels_process_counters(cli: Callable[..., Result]) -> None:
    ingest_sample(cli)
    data = cli("stats", "--json").json()
    stored = data["stored"]
    assert [u["user_id"] for u in stored["users"]] == ["demo"] and stored["users"][0]["messages"] == 46
    assert len(stored["users"][0]["sessions"]) == 4 and stored["pending_rounds"] == 0
    assert 0 < stored["disk"]["message_store_bytes"] <= stored["disk"]["total_bytes"]
    text = cli("stats").out
    assert "Stored in" in text and "2026-03-02-pets" in text and "46 messages in 23 rounds" in text
    assert text.index("Stored in") < text.index("Counters of this process")


def test_import_and_ingest_dedupe_per_user(cli: Callable[..., Result], tmp_path: Path) -> None:
    """Ids are unique per user: bob's import or ingest of ids alice already has stores them, and
    --skip-existing / ingest's dedupe skip only what the same user already has."""
    lines = [
        {"id": "m1", "round_id": "r1", "role": "user", "content": "alice's kayak"},
        {"id": "m2", "round_id": "r2", "role": "user", "content": "alice's ficus"},
    ]
    source = tmp_path / "alice.jsonl"
    source.write_text("\n".join(json.dumps(line) for line in lines), encoding="utf-8")
    assert cli("ingest", str(source), "--user", "alice").code == 0
    archive = tmp_path / "both.jsonl"
    bob_rows = [
        {**row, "user_id": "bob", "content": row["content"].replace("alice", "bob")}
        for row in cli("export", "--user", "alice").json_lines()
    ]
    archive.write_text("\n".join(json.dumps(row) for row in bob_rows), encoding="utf-8")
    imported = cli("import", str(archive), "--json")
    assert imported.code == 0, imported.err
    assert imported.json()["messages"] == 2 and imported.json()["skipped_messages"] == 0
    both = [json.loads(line) for line in cli("export", "--all-users").out.splitlines()]
    assert [(r["user_id"], r["id"]) for r in both] == [("alice", "m1"), ("alice", "m2"), ("bob", "m1"), ("bob", "m2")]
    assert [r["round_id"] for r in both[2:]] == [r["round_id"] for r in both[:2]], "bob's rounds reuse alice's ids"
    everyone = tmp_path / "everyone.jsonl"
    everyone.write_text("\n".join(json.dumps(row) for row in both), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    whole = cli("import", str(everyone), "--json", "--data-dir", str(elsewhere), data=False)
    assert whole.code == 0 and whole.json()["messages"] == 4, "one archive may hold two users' equal ids"
    carol = [{**row, "user_id": "carol"} for row in bob_rows[:1]]
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("\n".join(json.dumps(row) for row in [*bob_rows, *carol]), encoding="utf-8")
    refused = cli("import", str(mixed))
    assert refused.code == 2 and "of user 'bob'" in refused.err and "carol" not in refused.err
    skipped = cli("import", str(mixed), "--skip-existing", "--json")
    assert skipped.code == 0 and skipped.json()["skipped_messages"] == 2 and skipped.json()["messages"] == 1
    again = cli("ingest", str(source), "--user", "bob", "--json")
    assert again.json()["messages"] == 0 and again.json()["skipped_messages"] == 2, "bob has m1, m2 by now"
    dave = cli("ingest", str(source), "--user", "dave", "--json")
    assert dave.json()["messages"] == 2 and dave.json()["skipped_messages"] == 0, "alice's ids never count for dave"
