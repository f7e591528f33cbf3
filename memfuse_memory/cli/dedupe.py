"""What a re-run of ``ingest`` or ``import`` must not store twice: content-derived message ids
for messages that bring none, and the messages a data directory already holds."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memfuse_memory.cli import archive
from memfuse_memory.cli.formats import Conversation
from memfuse_memory.config import MemFuseConfig
from memfuse_memory.models import IdKey
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


def stored_ids(config: MemFuseConfig, keys: Sequence[IdKey]) -> set[IdKey]:
    """The (user, message id) pairs among ``keys`` already in the configured message store (none
    when a SQLite data directory holds no memory yet). Ids are unique per user: another user's
    message never counts."""
    if config.storage.message_store.backend == "sqlite" and not (Path(config.storage.data_dir) / FILE_NAME).is_file():
        return set()
    by_user: dict[str, list[str]] = defaultdict(list)
    for user_id, message_id in keys:
        by_user[user_id].append(message_id)
    with archive.read_store(config) as store:
        return {IdKey(user, mid) for user, ids in by_user.items() for mid in store.existing_ids(user, ids)}


def drop_stored(conversations: Sequence[Conversation], stored: set[IdKey]) -> int:
    """Remove the stored messages (and the rounds left empty) in place; return how many went."""
    dropped = 0
    for conversation in conversations:
        kept_rounds = []
        for round_ in conversation.rounds:
            kept = [message for message in round_ if IdKey(conversation.user_id, message.get("id", "")) not in stored]
            dropped += len(round_) - len(kept)
            if kept:
                kept_rounds.append(kept)
        conversation.rounds = kept_rounds
    return dropped
