"""Reads of the PostgreSQL message store, and the claim of rounds left pending by dead engines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from memfuse_memory.models import IdKey, MessageFacts, Round, StoredMessage, from_micros
from memfuse_memory.storage.postgres.connection import PgConnection, storage_error
from memfuse_memory.storage.postgres.schema import MESSAGE_COLUMNS, to_message
from memfuse_memory.storage.rows import export_where, group_rounds, session_summaries

JOINED = "FROM {s}.messages m JOIN {s}.rounds r ON r.seq = m.round_seq"


class PgReads(PgConnection):
    """Everything read back by id, scope or order of writing."""

    def claim_orphans(self) -> int:
        """Make this engine the owner of every pending round whose owner is dead; return how many.

        An owner is dead when its session advisory lock is free. The claim takes that lock for the
        transaction and moves the rounds with one ``UPDATE ... WHERE owner = dead``, so two live
        engines never both claim a round.

        A server restart frees every engine's lock at once. An engine that finds its own owner
        session lost takes its lock again and claims nothing at this check: every live engine
        takes its lock again at its own next check (or sooner, at any claim), so a live engine's
        rounds are not taken for a dead one's in the meantime.
        """
        try:
            if self._ensure_owner():
                return 0
            with self._write() as conn:
                owners = conn.execute(
                    self.sql("SELECT DISTINCT owner FROM {s}.rounds WHERE NOT stored AND owner <> %s"), (self.owner,)
                ).fetchall()
                claimed = 0
                for (owner,) in owners:
                    free = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (owner,)).fetchone()
                    if free and free[0]:
                        moved = conn.execute(
                            self.sql("UPDATE {s}.rounds SET owner = %s WHERE owner = %s AND NOT stored"),
                            (self.owner, owner),
                        )
                        claimed += moved.rowcount
        except psycopg.Error as exc:
            raise storage_error("cannot claim orphaned rounds", exc) from exc
        return claimed

    def pending_round_ids(self) -> set[IdKey]:
        """Rounds this engine must index: its own pending rounds, and those it claims from dead engines."""
        self.claim_orphans()
        sql = "SELECT user_id, id FROM {s}.rounds WHERE NOT stored AND owner = %s"
        return {IdKey(*row) for row in self._read(sql, (self.owner,))}

    def pending_rounds(self) -> list[Round]:
        """The rounds of :meth:`pending_round_ids`, in the order they were added."""
        self.claim_orphans()
        return self._rounds("NOT r.stored AND r.owner = %s", (self.owner,))

    def rounds_by_id(self, round_keys: Sequence[IdKey]) -> list[Round]:
        """The given rounds (by user and id) with their remaining messages, in the order they were added."""
        if not round_keys:
            return []
        return self._rounds(
            "(r.user_id, r.id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
            ([key.user_id for key in round_keys], [key.id for key in round_keys]),
        )

    def _rounds(self, where: str, args: tuple[Any, ...]) -> list[Round]:
        sql = f"SELECT {MESSAGE_COLUMNS}, r.seq {JOINED} WHERE {where} ORDER BY r.seq, m.seq"
        return group_rounds(self._read(sql, args))

    def rounds_of_messages(self, user_id: str, message_ids: Sequence[str]) -> list[str]:
        """Ids of the rounds holding these messages of this user."""
        rows = self._read(
            f"SELECT DISTINCT r.id {JOINED} WHERE m.user_id = %s AND m.id = ANY(%s)", (user_id, list(message_ids))
        )
        return [row[0] for row in rows]

    def existing_ids(self, user_id: str, ids: Sequence[str]) -> set[str]:
        """This user's ids among ``ids`` already stored (for an import that skips what is there)."""
        if not ids:
            return set()
        query = "SELECT id FROM {s}.messages WHERE user_id = %s AND id = ANY(%s)"
        return {row[0] for row in self._read(query, (user_id, list(ids)))}

    def messages_by_id(self, user_id: str, ids: Sequence[str]) -> dict[str, StoredMessage]:
        """This user's stored messages among ``ids``; missing (deleted) ids are left out."""
        if not ids:
            return {}
        sql = f"SELECT {MESSAGE_COLUMNS} {JOINED} WHERE m.user_id = %s AND m.id = ANY(%s)"
        rows = self._read(sql, (user_id, list(ids)))
        return {message.id: message for message in map(to_message, rows)}

    def round_message_ids(self, user_id: str, round_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """The ids of each given round's remaining messages, in order (rounds without any left out)."""
        if not round_ids:
            return {}
        query = (
            "SELECT r.id, m.id FROM {s}.rounds r JOIN {s}.messages m ON m.round_seq = r.seq "
            "WHERE r.user_id = %s AND r.id = ANY(%s) ORDER BY m.seq"
        )
        members: dict[str, list[str]] = {}
        for round_id, message_id in self._read(query, (user_id, list(round_ids))):
            members.setdefault(round_id, []).append(message_id)
        return {round_id: tuple(ids) for round_id, ids in members.items()}

    def message_facts(self, user_id: str, ids: Sequence[str]) -> dict[str, MessageFacts]:
        """Role and time of this user's stored messages among ``ids``: one narrow read, no text."""
        if not ids:
            return {}
        query = "SELECT id, role, created_us FROM {s}.messages WHERE user_id = %s AND id = ANY(%s)"
        rows = self._read(query, (user_id, list(ids)))
        return {mid: MessageFacts(role, from_micros(micros)) for mid, role, micros in rows}

    def session_messages(
        self, user_id: str, session_id: str, *, pending_only: bool, limit: int | None, order: str
    ) -> list[StoredMessage]:
        """A session's messages in the order they were added; ``limit`` keeps the latest ones."""
        sql = f"SELECT {MESSAGE_COLUMNS} {JOINED} WHERE m.user_id = %s AND m.session_id = %s"
        if pending_only:
            sql += " AND NOT r.stored"
        sql += " ORDER BY m.seq DESC"
        args: list[Any] = [user_id, session_id]
        if limit is not None:
            sql += " LIMIT %s"
            args.append(limit)
        messages = [to_message(row) for row in self._read(sql, args)]
        if order == "asc":
            messages.reverse()
        return messages

    def export(self, *, user_id: str | None = None, session_id: str | None = None) -> list[StoredMessage]:
        """Messages in the order they were added, optionally of one user and/or session."""
        where, args = export_where(user_id, session_id, "%s")
        rows = self._read(f"SELECT {MESSAGE_COLUMNS} {JOINED} {where} ORDER BY m.seq", args)
        return [to_message(row) for row in rows]

    def sessions(self, user_id: str) -> list[dict[str, Any]]:
        """A user's sessions with message counts and first/last message times, oldest first."""
        rows = self._read(
            "SELECT session_id, agent_id, count(*), min(created_us), max(created_us) FROM {s}.messages "
            "WHERE user_id = %s GROUP BY session_id, agent_id ORDER BY min(seq)",
            (user_id,),
        )
        return session_summaries(rows)

    def users(self) -> list[str]:
        """Every user with stored rounds, in order of first write."""
        return [row[0] for row in self._read("SELECT user_id FROM {s}.rounds GROUP BY user_id ORDER BY min(seq)")]

    def user_version(self, user_id: str) -> int:
        """A counter of the user's changes, shared by every engine on this database (0: none yet)."""
        rows = self._read("SELECT version FROM {s}.user_versions WHERE user_id = %s", (user_id,))
        return int(rows[0][0]) if rows else 0

    def counts(self) -> dict[str, int]:
        """Messages, rounds and rounds pending (not yet in the vector store)."""
        row = self._read(
            "SELECT (SELECT count(*) FROM {s}.messages), (SELECT count(*) FROM {s}.rounds), "
            "(SELECT count(*) FROM {s}.rounds WHERE NOT stored)"
        )[0]
        return {"messages": int(row[0]), "rounds": int(row[1]), "pending_rounds": int(row[2])}
