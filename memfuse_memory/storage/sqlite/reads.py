"""Reads of the SQLite message store: messages, rounds, sessions, users, versions and counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memfuse_memory.models import IdKey, MessageFacts, Round, StoredMessage, from_micros
from memfuse_memory.storage.rows import export_where, group_rounds, session_summaries
from memfuse_memory.storage.sqlite.connection import SqliteConnection
from memfuse_memory.storage.sqlite.schema import MESSAGE_COLUMNS, to_message


class SqliteReads(SqliteConnection):
    """Everything read back by id, scope or order of writing."""

    def rounds_of_messages(self, user_id: str, message_ids: Sequence[str]) -> list[str]:
        """Ids of the rounds holding these messages of this user."""
        marks = ",".join("?" * len(message_ids))
        rows = self._read(
            f"SELECT DISTINCT r.id FROM messages m JOIN rounds r ON r.seq = m.round_seq "
            f"WHERE m.user_id = ? AND m.id IN ({marks})",
            (user_id, *message_ids),
        )
        return [row[0] for row in rows]

    def export(self, *, user_id: str | None = None, session_id: str | None = None) -> list[StoredMessage]:
        """Messages in the order they were added, optionally of one user and/or session."""
        where, args = export_where(user_id, session_id, "?")
        sql = f"SELECT {MESSAGE_COLUMNS} FROM messages m JOIN rounds r ON r.seq = m.round_seq {where} ORDER BY m.seq"
        return [to_message(row) for row in self._read(sql, args)]

    def sessions(self, user_id: str) -> list[dict[str, Any]]:
        """A user's sessions with message counts and first/last message times, oldest first."""
        rows = self._read(
            "SELECT session_id, agent_id, COUNT(*), MIN(created_us), MAX(created_us), MIN(seq) FROM messages "
            "WHERE user_id = ? GROUP BY session_id, agent_id ORDER BY MIN(seq)",
            (user_id,),
        )
        return session_summaries(rows)

    def pending_round_ids(self) -> set[IdKey]:
        """Keys of the rounds acknowledged but not yet in the vector store."""
        return {IdKey(*row) for row in self._read("SELECT user_id, id FROM rounds WHERE stored = 0", ())}

    def pending_rounds(self) -> list[Round]:
        """Rounds acknowledged but not yet in the vector store, in the order they were added."""
        return self._rounds("r.stored = 0", ())

    def rounds_by_id(self, round_keys: Sequence[IdKey]) -> list[Round]:
        """The given rounds (by user and id) with their remaining messages, in the order they were added."""
        if not round_keys:
            return []
        values = ",".join(["(?, ?)"] * len(round_keys))
        return self._rounds(f"(r.user_id, r.id) IN (VALUES {values})", tuple(v for key in round_keys for v in key))

    def _rounds(self, where: str, args: tuple[Any, ...]) -> list[Round]:
        return group_rounds(
            self._read(
                f"SELECT {MESSAGE_COLUMNS}, r.seq FROM rounds r JOIN messages m ON m.round_seq = r.seq "
                f"WHERE {where} ORDER BY r.seq, m.seq",
                args,
            )
        )

    def session_messages(
        self, user_id: str, session_id: str, *, pending_only: bool, limit: int | None, order: str
    ) -> list[StoredMessage]:
        """A session's messages in the order they were added; ``limit`` keeps the latest ones."""
        sql = (
            f"SELECT {MESSAGE_COLUMNS} FROM messages m JOIN rounds r ON r.seq = m.round_seq "
            "WHERE m.user_id = ? AND m.session_id = ?"
        )
        if pending_only:
            sql += " AND r.stored = 0"
        sql += " ORDER BY m.seq DESC"
        args: list[Any] = [user_id, session_id]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        messages = [to_message(row) for row in self._read(sql, args)]
        if order == "asc":
            messages.reverse()
        return messages

    def messages_by_id(self, user_id: str, ids: Sequence[str]) -> dict[str, StoredMessage]:
        """This user's stored messages among ``ids``; missing (deleted) ids are left out."""
        joined = f"SELECT {MESSAGE_COLUMNS} FROM messages m JOIN rounds r ON r.seq = m.round_seq"
        rows = self._by_ids(joined, user_id, ids)
        return {message.id: message for message in map(to_message, rows)}

    def message_facts(self, user_id: str, ids: Sequence[str]) -> dict[str, MessageFacts]:
        """Role and time of this user's stored messages among ``ids``: one narrow read, no text."""
        rows = self._by_ids("SELECT m.id, m.role, m.created_us FROM messages m", user_id, ids)
        return {mid: MessageFacts(role, from_micros(micros)) for mid, role, micros in rows}

    def round_message_ids(self, user_id: str, round_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """The ids of each given round's remaining messages, in order (rounds without any left out)."""
        select = "SELECT m.seq, r.id, m.id FROM messages m JOIN rounds r ON r.seq = m.round_seq"
        members: dict[str, list[str]] = {}
        for _, round_id, message_id in sorted(self._by_ids(select, user_id, round_ids, key="r")):
            members.setdefault(round_id, []).append(message_id)
        return {round_id: tuple(ids) for round_id, ids in members.items()}

    def _by_ids(self, select: str, user_id: str, ids: Sequence[str], key: str = "m") -> list[Any]:
        """Rows of ``select`` for this user's messages (``key`` "m") or rounds ("r") among ``ids``, 500
        ids per statement, each found through its table's (user_id, id) index."""
        rows: list[Any] = []
        for start in range(0, len(ids), 500):
            part = list(ids[start : start + 500])
            marks = ",".join("?" * len(part))
            rows += self._read(f"{select} WHERE {key}.user_id = ? AND {key}.id IN ({marks})", [user_id, *part])
        return rows

    def user_version(self, user_id: str) -> int:
        """A counter of the user's changes, shared by every process on this file (0: none yet)."""
        row = self._read("SELECT version FROM user_versions WHERE user_id = ?", (user_id,))
        return int(row[0][0]) if row else 0

    def counts(self) -> dict[str, int]:
        """Messages, rounds and rounds pending (not yet in the vector store)."""
        row = self._read(
            "SELECT (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM rounds), "
            "(SELECT COUNT(*) FROM rounds WHERE stored = 0)",
            (),
        )[0]
        return {"messages": int(row[0]), "rounds": int(row[1]), "pending_rounds": int(row[2])}

    def users(self) -> list[str]:
        """Every user with stored rounds, in order of first write."""
        return [row[0] for row in self._read("SELECT user_id FROM rounds GROUP BY user_id ORDER BY MIN(seq)", ())]
