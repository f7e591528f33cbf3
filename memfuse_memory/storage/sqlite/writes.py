"""Writes of the SQLite message store: appends (the durable acknowledgement), the stored flag, deletes."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Sequence

from memfuse_memory.errors import DuplicateMessageError, InvalidInputError, StorageError
from memfuse_memory.models import IdKey, Round, StoredMessage, to_micros
from memfuse_memory.storage.sqlite.connection import SqliteConnection
from memfuse_memory.storage.sqlite.schema import message_row, user_token


class SqliteWrites(SqliteConnection):
    """Every change to the file, each in one transaction."""

    def append_rounds(self, rounds: Sequence[Round]) -> None:
        """Commit rounds and their messages durably (and into the FTS index) in one transaction."""
        try:
            with self._write() as conn:
                for round_ in rounds:
                    scope = round_.scope
                    token = user_token(scope.user_id)
                    cursor = conn.execute(
                        "INSERT INTO rounds (id, user_id, agent_id, session_id, created_us) VALUES (?, ?, ?, ?, ?)",
                        (round_.id, scope.user_id, scope.agent_id, scope.session_id, to_micros(round_.created_at)),
                    )
                    round_.seq = int(cursor.lastrowid or 0)
                    conn.executemany(
                        "INSERT INTO messages (id, round_seq, user_id, user_token, agent_id, session_id, role, content,"
                        " name, created_us, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [message_row(m, round_.seq, scope, token) for m in round_.messages],
                    )
        except sqlite3.IntegrityError as exc:
            taken = self._taken(rounds)
            if taken:
                raise DuplicateMessageError(taken) from exc
            raise StorageError(f"cannot store {len(rounds)} round(s): {exc}") from exc
        except sqlite3.Error as exc:
            raise StorageError(f"cannot store {len(rounds)} round(s): {exc}") from exc

    def append_messages(self, round_: Round, messages: Sequence[StoredMessage]) -> None:
        """Commit more messages of an already stored round, durably, in one transaction; the round
        is pending again, so whatever already indexed it indexes it again with them."""
        scope = round_.scope
        token = user_token(scope.user_id)
        try:
            with self._write() as conn:
                conn.executemany(
                    "INSERT INTO messages (id, round_seq, user_id, user_token, agent_id, session_id, role, content,"
                    " name, created_us, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [message_row(m, round_.seq, scope, token) for m in messages],
                )
                conn.execute("UPDATE rounds SET stored = 0 WHERE seq = ?", (round_.seq,))
        except sqlite3.IntegrityError as exc:
            taken = self.existing_ids(scope.user_id, [m.id for m in messages])
            raise DuplicateMessageError(f"message id(s) already stored: {', '.join(sorted(taken))}") from exc
        except sqlite3.Error as exc:
            raise StorageError(f"cannot append to round {round_.id}: {exc}") from exc

    def _taken(self, rounds: Sequence[Round]) -> str:
        """What made an append of ``rounds`` fail: the ids their users already have ("" if none)."""
        messages: dict[str, list[str]] = defaultdict(list)
        round_ids: dict[str, list[str]] = defaultdict(list)
        for round_ in rounds:
            messages[round_.scope.user_id].extend(m.id for m in round_.messages)
            round_ids[round_.scope.user_id].append(round_.id)
        taken = sorted(mid for user_id, ids in messages.items() for mid in self.existing_ids(user_id, ids))
        if taken:
            return f"message id(s) already stored: {', '.join(taken)}"
        taken = sorted(rid for user_id, ids in round_ids.items() for rid in self._existing(user_id, ids, "rounds"))
        return f"round id(s) already stored: {', '.join(taken)}" if taken else ""

    def existing_ids(self, user_id: str, ids: Sequence[str]) -> set[str]:
        """The ids among ``ids`` of messages this user already has (another user's are no concern)."""
        return self._existing(user_id, ids, "messages")

    def _existing(self, user_id: str, ids: Sequence[str], table: str) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            part = list(ids[start : start + 500])
            marks = ",".join("?" * len(part))
            sql = f"SELECT id FROM {table} WHERE user_id = ? AND id IN ({marks})"
            found.update(row[0] for row in self._read(sql, [user_id, *part]))
        return found

    def mark_stored(self, round_keys: Sequence[IdKey]) -> list[IdKey]:
        """Record that these rounds' vectors are in the vector store.

        Returns the keys of rounds that are gone (deleted meanwhile, possibly by another process),
        so the caller can remove the vectors it has just written for them.
        """
        if not round_keys:
            return []
        try:
            with self._write() as conn:
                return [
                    key
                    for key in round_keys
                    if conn.execute("UPDATE rounds SET stored = 1 WHERE user_id = ? AND id = ?", key).rowcount == 0
                ]
        except sqlite3.Error as exc:
            raise StorageError(f"cannot mark {len(round_keys)} round(s) stored: {exc}") from exc

    def update_messages(self, user_id: str, updates: Sequence[StoredMessage]) -> list[str]:
        """Replace role, content, name and metadata of a user's messages in one transaction (ids, times
        and rounds stay); their rounds are marked not stored, to be re-indexed. Returns the round ids."""
        marks = ",".join("?" * len(updates))
        try:
            with self._write() as conn:
                rows = conn.execute(
                    f"SELECT m.id, r.id FROM messages m JOIN rounds r ON r.seq = m.round_seq "
                    f"WHERE m.user_id = ? AND m.id IN ({marks})",
                    (user_id, *(m.id for m in updates)),
                ).fetchall()
                missing = {m.id for m in updates} - {mid for mid, _ in rows}
                if missing:
                    raise KeyError(sorted(missing))
                conn.executemany(
                    "UPDATE messages SET role = ?, content = ?, name = ?, metadata = ? WHERE user_id = ? AND id = ?",
                    [
                        (m.role, m.content, m.name, json.dumps(m.metadata, ensure_ascii=False), user_id, m.id)
                        for m in updates
                    ],
                )
                touched = sorted({round_id for _, round_id in rows})
                conn.executemany(
                    "UPDATE rounds SET stored = 0 WHERE user_id = ? AND id = ?", [(user_id, rid) for rid in touched]
                )
        except KeyError as exc:
            raise InvalidInputError(f"no message of this user with id {', '.join(exc.args[0])}") from exc
        except sqlite3.Error as exc:
            raise StorageError(f"cannot update {len(updates)} message(s): {exc}") from exc
        return touched

    def delete_session(self, user_id: str, session_id: str) -> int:
        """Delete a session's rounds and messages; return how many messages went."""
        return self._delete("user_id = ? AND session_id = ?", (user_id, session_id))

    def delete_user(self, user_id: str) -> int:
        """Delete every round and message of a user; return how many messages went."""
        return self._delete("user_id = ?", (user_id,))

    def delete_messages(self, user_id: str, message_ids: Sequence[str]) -> tuple[int, list[str], list[str]]:
        """Delete a user's messages by id in one transaction.

        Returns (messages deleted, ids of rounds now empty and deleted, ids of rounds that keep
        other messages: these are marked not stored, to be re-indexed without the deleted ones).
        """
        marks = ",".join("?" * len(message_ids))
        try:
            with self._write() as conn:
                rows = conn.execute(
                    f"SELECT m.seq, r.id, r.seq FROM messages m JOIN rounds r ON r.seq = m.round_seq "
                    f"WHERE m.user_id = ? AND m.id IN ({marks})",
                    (user_id, *message_ids),
                ).fetchall()
                touched = sorted({(round_id, round_seq) for _, round_id, round_seq in rows})
                conn.executemany("DELETE FROM messages WHERE seq = ?", [(row[0],) for row in rows])
                emptied: list[str] = []
                for round_id, round_seq in touched:
                    left = conn.execute("SELECT COUNT(*) FROM messages WHERE round_seq = ?", (round_seq,)).fetchone()[0]
                    if left:
                        conn.execute("UPDATE rounds SET stored = 0 WHERE seq = ?", (round_seq,))
                    else:
                        conn.execute("DELETE FROM rounds WHERE seq = ?", (round_seq,))
                        emptied.append(round_id)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot delete {len(message_ids)} message(s): {exc}") from exc
        return len(rows), emptied, [rid for rid, _ in touched if rid not in emptied]

    def _delete(self, where: str, args: tuple[str, ...]) -> int:
        try:
            with self._write() as conn:
                count = conn.execute(f"SELECT COUNT(*) FROM messages WHERE {where}", args).fetchone()[0]
                conn.execute(f"DELETE FROM messages WHERE {where}", args)
                conn.execute(f"DELETE FROM rounds WHERE {where}", args)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot delete messages: {exc}") from exc
        return int(count)
