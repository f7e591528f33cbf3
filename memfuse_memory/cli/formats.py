"""Reading conversation files for ``ingest``: JSON or JSONL, in three message dialects.

Dialects: our own messages (role, content, id, name, created_at, metadata), OpenAI-style
``messages`` arrays (extra fields such as ``tool_calls`` go to metadata) and LangChain message
dicts (``type`` human/ai/system/tool, also the ``message_to_dict`` and ``dumpd`` shapes).
Everything is parsed and validated before anything is written, so a bad file writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memfuse_memory.cli.errors import InputFileError

SESSION_KEYS = ("session_id", "session", "thread_id", "conversation_id")
USER_KEYS = ("user_id", "user")
AGENT_KEYS = ("agent_id", "agent")
OWN_KEYS = frozenset({"role", "content", "id", "name", "created_at", "metadata"})
SCOPE_KEYS = frozenset({*SESSION_KEYS, *USER_KEYS, *AGENT_KEYS, "round_id"})
_ROLES = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
}
_LANGCHAIN_CLASSES = {
    "HumanMessage": "human",
    "AIMessage": "ai",
    "AIMessageChunk": "ai",
    "SystemMessage": "system",
    "ToolMessage": "tool",
    "FunctionMessage": "function",
    "ChatMessage": "chat",
}
_LANGCHAIN_EXTRAS = ("tool_calls", "tool_call_id", "additional_kwargs", "response_metadata", "usage_metadata")


@dataclass
class Conversation:
    """The rounds of one (user, session, agent), with where they came from for error messages."""

    source: str
    user_id: str
    session_id: str
    agent_id: str | None
    rounds: list[list[dict[str, Any]]] = field(default_factory=list)

    @property
    def message_count(self) -> int:
        return sum(len(round_) for round_ in self.rounds)


@dataclass(frozen=True)
class Defaults:
    """Scope used when a record names none: ``--user``/``--session`` or the file's container."""

    user_id: str
    session_id: str | None
    agent_id: str | None


# -- reading JSON / JSONL -------------------------------------------------------------------


def read_documents(path: Path) -> list[tuple[str, Any]]:
    """The JSON values of a file with their location: one for JSON, one per line for JSONL."""
    if not path.exists():
        raise InputFileError(f"file not found: {path}")
    if not path.is_file():
        raise InputFileError(f"not a file: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not text.strip():
        raise InputFileError(f"{path} is empty")
    if path.suffix.lower() in {".jsonl", ".ndjson"}:
        return list(_jsonl(path, text))
    try:
        return [(str(path), json.loads(text))]
    except json.JSONDecodeError as exc:
        if path.suffix.lower() != ".json" and exc.msg == "Extra data":
            return list(_jsonl(path, text))
        raise InputFileError(f"bad JSON in {path} at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc


def _jsonl(path: Path, text: str) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield f"{path} line {number}", json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputFileError(f"bad JSON in {path} at line {number}, column {exc.colno}: {exc.msg}") from exc


# -- message dialects -----------------------------------------------------------------------


def is_message(value: Any) -> bool:
    """True for a dict that looks like one message in any supported dialect."""
    if not isinstance(value, Mapping):
        return False
    if "role" in value and ("content" in value or "tool_calls" in value):
        return True
    if "lc" in value and isinstance(value.get("kwargs"), Mapping):
        return True
    return isinstance(value.get("type"), str) and ("content" in value or isinstance(value.get("data"), Mapping))


def _text(content: Any, where: str) -> tuple[str, list[Any]]:
    """Message text, plus any non-text content parts (kept in metadata)."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    if isinstance(content, list):
        texts: list[str] = []
        others: list[Any] = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping) and part.get("type") in {"text", "input_text", "output_text"}:
                texts.append(str(part.get("text", "")))
            else:
                others.append(part)
        return "\n".join(texts), others
    raise InputFileError(f"{where}: content must be a string or a list of parts, not {type(content).__name__}")


def normalize_message(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """One message of any dialect in our format: role, content and optional id/name/created_at/metadata."""
    if "lc" in raw and isinstance(raw.get("kwargs"), Mapping):
        ident = raw.get("id")
        kind = _LANGCHAIN_CLASSES.get(ident[-1], "") if isinstance(ident, list) and ident else ""
        return _langchain(raw["kwargs"], str(raw["kwargs"].get("type") or kind), where)
    if "role" not in raw and isinstance(raw.get("type"), str):
        body = raw["data"] if isinstance(raw.get("data"), Mapping) else raw
        return _langchain(body, raw["type"], where)
    return _role_message(raw, where)


def _role(value: Any, where: str) -> str:
    role = _ROLES.get(str(value).lower()) if isinstance(value, str) else None
    if role is None:
        raise InputFileError(f"{where}: unknown role {value!r} (expected user, assistant, system or tool)")
    return role


def _role_message(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Our own format, or OpenAI-style: fields we do not store natively go to metadata."""
    text, parts = _text(raw.get("content"), where)
    metadata = raw.get("metadata", {})
    if not isinstance(metadata, Mapping):
        raise InputFileError(f"{where}: metadata must be an object, not {type(metadata).__name__}")
    message: dict[str, Any] = {"role": _role(raw.get("role"), where), "content": text}
    extras = {k: v for k, v in raw.items() if k not in OWN_KEYS and k not in SCOPE_KEYS and k != "timestamp"}
    if parts:
        extras["content_parts"] = parts
    if extras:
        metadata = {**extras, **metadata}
    for key in ("id", "name", "created_at"):
        if raw.get(key) is not None:
            message[key] = raw[key]
    if "created_at" not in message and raw.get("timestamp") is not None:
        message["created_at"] = raw["timestamp"]
    if metadata:
        message["metadata"] = dict(metadata)
    return message


def _langchain(body: Mapping[str, Any], kind: str, where: str) -> dict[str, Any]:
    """A LangChain message dict (``type`` human/ai/system/tool/chat)."""
    role_name = body.get("role") if kind == "chat" else kind
    text, parts = _text(body.get("content"), where)
    message: dict[str, Any] = {"role": _role(role_name, where), "content": text}
    for key in ("id", "name"):
        if body.get(key):
            message[key] = body[key]
    metadata: dict[str, Any] = {key: body[key] for key in _LANGCHAIN_EXTRAS if body.get(key)}
    if parts:
        metadata["content_parts"] = parts
    if metadata:
        message["metadata"] = metadata
    return message


def split_rounds(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Group a flat message list into rounds: a user message after a reply starts a new round."""
    rounds: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    for message in messages:
        replied = any(m["role"] in {"assistant", "tool"} for m in current)
        if message["role"] == "user" and replied:
            rounds.append(current)
            current = []
        current.append(message)
    if current:
        rounds.append(current)
    return rounds


# -- records --------------------------------------------------------------------------------


def _pick(record: Mapping[str, Any], keys: tuple[str, ...], fallback: Any, where: str) -> Any:
    for key in keys:
        if record.get(key) is not None:
            value = record[key]
            if not isinstance(value, str):
                raise InputFileError(f"{where}: {key} must be a string, not {type(value).__name__}")
            return value
    return fallback


class ConversationReader:
    """Turns the documents of one file into conversations, in file order."""

    def __init__(self, path: Path, defaults: Defaults) -> None:
        self.path = path
        self.defaults = defaults
        self.conversations: list[Conversation] = []
        self._streams: dict[tuple[str, str, str | None], Conversation] = {}
        self._stream_rounds: dict[tuple[str, str, str | None], dict[str, list[dict[str, Any]]]] = {}
        self._unnamed = 0

    def read(self) -> list[Conversation]:
        """Parse the whole file; raise InputFileError naming the first bad record."""
        for where, document in read_documents(self.path):
            self._value(document, where, self.defaults)
        for key, conversation in self._streams.items():
            loose = [m for r in conversation.rounds for m in r]
            grouped = self._stream_rounds[key]
            if grouped and sum(len(r) for r in grouped.values()) != len(loose):
                raise InputFileError(f"{self.path}: session {key[1]!r} mixes messages with and without round_id")
            conversation.rounds = list(grouped.values()) if grouped else split_rounds(loose)
        if not any(c.rounds for c in self.conversations):
            raise InputFileError(f"no messages found in {self.path}")
        return [c for c in self.conversations if c.rounds]

    def _session(self, record: Mapping[str, Any], defaults: Defaults, where: str) -> str:
        session = _pick(record, SESSION_KEYS, defaults.session_id, where)
        if session is None:
            self._unnamed += 1
            session = self.path.stem if self._unnamed == 1 else f"{self.path.stem}-{self._unnamed}"
        return str(session)

    def _value(self, value: Any, where: str, defaults: Defaults) -> None:
        if isinstance(value, list):
            if value and all(is_message(item) for item in value):
                self._add(self._session({}, defaults, where), defaults, where, messages=value)
                return
            for index, item in enumerate(value):
                self._value(item, f"{where} [{index}]", defaults)
            return
        if not isinstance(value, Mapping):
            raise InputFileError(f"{where}: expected a conversation object or a message, not {type(value).__name__}")
        container = next((key for key in ("sessions", "conversations") if isinstance(value.get(key), list)), None)
        if container is not None:
            inner = Defaults(
                user_id=_pick(value, USER_KEYS, defaults.user_id, where),
                session_id=defaults.session_id,
                agent_id=_pick(value, AGENT_KEYS, defaults.agent_id, where),
            )
            for index, item in enumerate(value[container]):
                self._value(item, f"{where} {container}[{index}]", inner)
            return
        scoped = Defaults(
            user_id=_pick(value, USER_KEYS, defaults.user_id, where),
            session_id=defaults.session_id,
            agent_id=_pick(value, AGENT_KEYS, defaults.agent_id, where),
        )
        if "rounds" in value:
            self._add(self._session(value, defaults, where), scoped, where, rounds=value["rounds"])
        elif "messages" in value:
            self._add(self._session(value, defaults, where), scoped, where, messages=value["messages"])
        elif is_message(value):
            self._stream(value, where, scoped, defaults)
        else:
            raise InputFileError(
                f"{where}: not a conversation: expected 'messages', 'rounds', 'sessions' "
                "or a message with 'role' or 'type'"
            )

    def _add(
        self,
        session: str,
        defaults: Defaults,
        where: str,
        *,
        messages: Any = None,
        rounds: Any = None,
    ) -> None:
        conversation = Conversation(where, defaults.user_id, session, defaults.agent_id)
        if rounds is not None:
            if not isinstance(rounds, list):
                raise InputFileError(f"{where}: rounds must be a list of message lists")
            for index, round_ in enumerate(rounds):
                if not isinstance(round_, list) or not round_:
                    raise InputFileError(f"{where} rounds[{index}]: a round must be a non-empty list of messages")
                conversation.rounds.append(self._messages(round_, f"{where} rounds[{index}]"))
        else:
            if not isinstance(messages, list):
                raise InputFileError(f"{where}: messages must be a list")
            conversation.rounds = split_rounds(self._messages(messages, where))
        self.conversations.append(conversation)

    def _messages(self, items: list[Any], where: str) -> list[dict[str, Any]]:
        out = []
        for index, item in enumerate(items):
            spot = f"{where} message {index}"
            if not isinstance(item, Mapping):
                raise InputFileError(f"{spot}: a message must be an object, not {type(item).__name__}")
            out.append(normalize_message(item, spot))
        return out

    def _stream(self, value: Mapping[str, Any], where: str, scoped: Defaults, defaults: Defaults) -> None:
        """A JSONL line holding one message: grouped by session, then by round_id or by turns."""
        session = _pick(value, SESSION_KEYS, defaults.session_id, where)
        if session is None:
            session = self.path.stem
        key = (scoped.user_id, session, scoped.agent_id)
        conversation = self._streams.get(key)
        if conversation is None:
            conversation = self._streams[key] = Conversation(where, scoped.user_id, session, scoped.agent_id)
            self._stream_rounds[key] = {}
            self.conversations.append(conversation)
        message = normalize_message(value, where)
        round_id = value.get("round_id")
        if round_id is not None:
            self._stream_rounds[key].setdefault(str(round_id), []).append(message)
        conversation.rounds.append([message])


def read_conversations(path: Path, defaults: Defaults) -> list[Conversation]:
    """All conversations of a JSON or JSONL file, in file order."""
    return ConversationReader(path, defaults).read()
