"""Row shapes both message stores share: a message row to a model, rows to rounds and to session
summaries, and the optional user/session filter of an export (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from memfuse_memory.models import IdKey, Round, from_micros
from memfuse_memory.storage.sqlite.schema import to_message


def group_rounds(rows: Iterable[Sequence[Any]]) -> list[Round]:
    """Rounds from rows of ``MESSAGE_COLUMNS`` plus the round's seq, in row order."""
    rounds: dict[IdKey, Round] = {}  # two users may use one round id
    for row in rows:
        message = to_message(tuple(row[:-1]))
        current = rounds.get(message.round_key)
        if current is None:
            current = rounds[message.round_key] = Round(
                id=message.round_id, scope=message.scope, messages=[], seq=row[-1]
            )
        current.messages.append(message)
    return list(rounds.values())


def session_summaries(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Session summaries from rows of (session, agent, count, first_us, last_us, ...)."""
    return [
        {
            "session_id": row[0],
            "agent_id": row[1],
            "messages": row[2],
            "first_at": from_micros(row[3]),
            "last_at": from_micros(row[4]),
        }
        for row in rows
    ]


def export_where(user_id: str | None, session_id: str | None, mark: str) -> tuple[str, list[Any]]:
    """The WHERE clause (or "") selecting an export's user and/or session over alias ``m``."""
    clauses, args = [], []
    if user_id is not None:
        clauses.append(f"m.user_id = {mark}")
        args.append(user_id)
    if session_id is not None:
        clauses.append(f"m.session_id = {mark}")
        args.append(session_id)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), args
