"""What a re-run of ``ingest`` or ``import`` must not store twice: content-derived message ids
for messages that bring none, and the messages a data directory already holds."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memfuse_memory.cli import archive
from memfuse_memory.cli.formats import Conversation
from memfuse_memory.config import MemFuseConfig
from memfuse_memory.storage.sqlite import FILE_NAME


def content_id(conversation: Conversation, position: tuple[int, int], message: dict[str, Any]) -> str:
    """A stable id from a message's scope, place in its conversation and fields: the same line of
    the same file gets the same id on every run (and a different place or text another one)."""
    key = [conversation.user_id, conversation.session_id, conversation.agent_id, *position, message]
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()[:32]


def give_content_ids(conversations: Sequence[Conversation]) -> None:
    """Give every message without an ``id`` its :func:`content_id` (in place)."""
    for conversation in conversations:
        for r, round_ in enumerate(conversation.rounds):
            for m, message in enumerate(round_):
                if message.get("id") is None:
                    message["id"] = content_id(conversation, (r, m), message)


def stored_ids(config: MemFuseConfig, ids: Sequence[str]) -> set[str]:
    """The ids among ``ids`` already in the configured message store (none when a SQLite data
    directory holds no memory yet)."""
    if config.storage.message_store.backend == "sqlite" and not (Path(config.storage.data_dir) / FILE_NAME).is_file():
        return set()
    with archive.read_store(config) as store:
        return store.existing_ids(list(ids))


def drop_stored(conversations: Sequence[Conversation], stored: set[str]) -> int:
    """Remove the stored messages (and the rounds left empty) in place; return how many went."""
    dropped = 0
    for conversation in conversations:
        kept_rounds = []
        for round_ in conversation.rounds:
            kept = [message for message in round_ if message.get("id") not in stored]
            dropped += len(round_) - len(kept)
            if kept:
                kept_rounds.append(kept)
        conversation.rounds = kept_rounds
    return dropped
