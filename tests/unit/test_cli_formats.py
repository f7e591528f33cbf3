"""Reading conversation files for ``ingest``: JSON/JSONL, our format, OpenAI and LangChain dialects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memfuse_memory.cli.demo import load_sample
from memfuse_memory.cli.errors import InputFileError
from memfuse_memory.cli.formats import Defaults, normalize_message, read_conversations, split_rounds

DEFAULTS = Defaults(user_id="default", session_id=None, agent_id=None)


def write(tmp_path: Path, name: str, value: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def write_lines(tmp_path: Path, name: str, lines: list[object]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return path


def test_bundled_sample_reads_as_four_sessions_of_one_user() -> None:
    sample = load_sample()
    path = Path(__file__).resolve().parents[2] / "memfuse_memory" / "data" / "sample_conversation.json"
    conversations = read_conversations(path, DEFAULTS)
    assert [c.session_id for c in conversations] == [s["session_id"] for s in sample["sessions"]]
    assert {c.user_id for c in conversations} == {"demo"}
    assert [len(c.rounds) for c in conversations] == [6, 6, 6, 5]
    assert all(len(r) == 2 and r[0]["role"] == "user" for c in conversations for r in c.rounds)
    for question in sample["questions"]:
        texts = [m["content"] for c in conversations for r in c.rounds for m in r]
        assert any(question["answer"].lower() in text.lower() for text in texts), question


def test_openai_messages_array_is_split_into_rounds_and_extras_kept(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "chat.json",
        {
            "session_id": "s1",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
                {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]},
                {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
                {"role": "assistant", "content": "It is sunny."},
                {"role": "user", "content": "thanks"},
            ],
        },
    )
    [conversation] = read_conversations(path, DEFAULTS)
    assert conversation.session_id == "s1"
    assert [[m["role"] for m in r] for r in conversation.rounds] == [
        ["system", "user", "assistant", "tool", "assistant"],
        ["user"],
    ]
    first = conversation.rounds[0]
    assert first[1]["content"] == "weather?"
    assert first[2] == {
        "role": "assistant",
        "content": "",
        "metadata": {"tool_calls": [{"id": "c1", "type": "function"}]},
    }
    assert first[3]["metadata"] == {"tool_call_id": "c1"}


def test_langchain_dict_shapes_map_to_roles(tmp_path: Path) -> None:
    messages = [
        {"type": "system", "content": "rules"},
        {"type": "human", "data": {"content": "hi", "type": "human", "id": "m1"}},
        {
            "lc": 1,
            "type": "constructor",
            "id": ["langchain", "schema", "messages", "AIMessage"],
            "kwargs": {"content": "hey"},
        },
        {"type": "tool", "content": "42", "tool_call_id": "t9"},
    ]
    path = write(tmp_path, "lc.json", [{"thread_id": "t", "user_id": "ann", "messages": messages}])
    [conversation] = read_conversations(path, DEFAULTS)
    assert (conversation.user_id, conversation.session_id) == ("ann", "t")
    flat = [m for r in conversation.rounds for m in r]
    assert [m["role"] for m in flat] == ["system", "user", "assistant", "tool"]
    assert flat[1]["id"] == "m1"
    assert flat[3]["metadata"] == {"tool_call_id": "t9"}


def test_jsonl_messages_grouped_by_session_and_round_id(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path,
        "log.jsonl",
        [
            {"session_id": "a", "round_id": "r1", "role": "user", "content": "one"},
            {"session_id": "b", "role": "user", "content": "other"},
            {"session_id": "a", "round_id": "r1", "role": "assistant", "content": "two"},
            {"session_id": "a", "round_id": "r2", "role": "user", "content": "three"},
        ],
    )
    conversations = {c.session_id: c for c in read_conversations(path, Defaults("u", None, None))}
    assert [[m["content"] for m in r] for r in conversations["a"].rounds] == [["one", "two"], ["three"]]
    assert conversations["b"].rounds == [[{"role": "user", "content": "other"}]]
    assert conversations["a"].user_id == "u"


def test_session_defaults_to_flag_then_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, "talk.json", [{"role": "user", "content": "x"}])
    assert read_conversations(path, DEFAULTS)[0].session_id == "talk"
    assert read_conversations(path, Defaults("u", "given", None))[0].session_id == "given"


def test_bad_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"role": "user", "content": "ok"}\n\n{"role": "user", "content": }\n', encoding="utf-8")
    with pytest.raises(InputFileError, match=r"line 3, column 29"):
        read_conversations(path, DEFAULTS)
    whole = tmp_path / "broken.json"
    whole.write_text('{\n  "messages": [\n    {"role": "user",}\n  ]\n}', encoding="utf-8")
    with pytest.raises(InputFileError, match=r"broken.json at line 3"):
        read_conversations(whole, DEFAULTS)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "file not found"),
        ("", "is empty"),
        ('{"title": "nothing"}', "not a conversation"),
        ('[{"role": "wizard", "content": "x"}]', "unknown role 'wizard'"),
        ('{"messages": "text"}', "messages must be a list"),
    ],
)
def test_unusable_files_are_rejected(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "in.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(InputFileError, match=message):
        read_conversations(path, DEFAULTS)


def test_split_rounds_keeps_consecutive_user_messages_together() -> None:
    messages = [
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": "c"},
        {"role": "user", "content": "d"},
    ]
    assert [len(r) for r in split_rounds(messages)] == [3, 1]


def test_own_format_fields_pass_through_unchanged() -> None:
    raw = {"role": "user", "content": "x", "id": "m1", "name": "ann", "created_at": "2026-01-01T00:00:00Z"}
    assert normalize_message({**raw, "metadata": {"k": 1}}, "here") == {**raw, "metadata": {"k": 1}}
    assert normalize_message({"role": "user", "content": "x", "timestamp": 5}, "here")["created_at"] == 5
