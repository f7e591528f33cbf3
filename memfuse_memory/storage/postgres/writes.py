"""Writes of the PostgreSQL message store, each one transaction whose COMMIT is the acknowledgement.

Every write bumps the version of each user it changes in the same transaction, and every write
that makes a round pending again makes this engine its owner (it buffers the round to re-index it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from typing import Any

import psycopg

from memfuse_memory.errors import DuplicateMessageError, InvalidInputError
from memfuse_memory.models import IdKey, Round, StoredMessage
from memfuse_memory.storage.postgres.connection import PgConnection, storage_error
from memfuse_memory.storage.postgres.schema import (
    BUMP_REWRITES,
    BUMP_VERSION,
    INSERT_MESSAGE,
    insert_round_sql,
    message_row,
    round_params,
)

# The rounds marked stored now, their users' versions bumped (in user order, so two engines never
# deadlock), and the rounds stored before; a round deleted by another engine meanwhile is in neither
# (the UPDATE and the FOR KEY SHARE lock wait for that delete's commit, then skip the row).
MARK_STORED = """
WITH marked AS (
    UPDATE {s}.rounds SET stored = true
    WHERE (user_id, id) IN (SELECT * FROM unnest(%(users)s::text[], %(ids)s::text[])) AND NOT stored
    RETURNING user_id, id
), bumped AS (
    INSERT INTO {s}.user_versions (user_id, version) SELECT DISTINCT user_id, 1 FROM marked ORDER BY user_id
    ON CONFLICT (user_id) DO UPDATE SET version = {s}.user_versions.version + 1
), before AS (
    SELECT user_id, id FROM {s}.rounds
    WHERE (user_id, id) IN (SELECT * FROM unnest(%(users)s::text[], %(ids)s::text[])) AND stored FOR KEY SHARE
)
SELECT user_id, id FROM marked UNION SELECT user_id, id FROM before
"""


BULK_MESSAGES = 500  # an append of this many messages or more is a bulk load: statistics are refreshed
ANALYZE_GROWTH = 0.2  # ... once bulk loads since the last refresh reach this share of what came before

log = logging.getLogger(__name__)


class PgWrites(PgConnection):
    """Every change to the shared store."""

    _bulk_written = 0  # messages of bulk appends since this engine last refreshed the statistics
    _analyzed_after = 0  # messages of bulk appends up to that refresh

    def _bump(self, conn: psycopg.Connection[Any], users: Iterable[str], *, rewrite: bool = False) -> None:
        """Bump the users' versions (and their rewrite counts after a delete or an edit), in user order."""
        for user_id in sorted(set(users)):
            if rewrite:
                conn.execute(self.sql(BUMP_REWRITES), {"user": user_id})
            else:
                conn.execute(self.sql(BUMP_VERSION), (user_id,))

    def append_rounds(self, rounds: Sequence[Round]) -> None:
        """Commit rounds and their messages (keyword-searchable at once): one statement, one round
        trip, for one round; one transaction for several."""
        try:
            with ExitStack() as stack:
                conn = stack.enter_context(self._connection() if len(rounds) == 1 else self._write())
                for round_ in rounds:
                    sql = self.sql(insert_round_sql(len(round_.messages)))
                    row = conn.execute(sql, round_params(round_, self.owner)).fetchone()
                    round_.seq = int(row[0]) if row else 0
        except psycopg.errors.UniqueViolation as exc:
            raise DuplicateMessageError(f"message or round id already stored: {exc.diag.message_detail}") from exc
        except psycopg.Error as exc:
            raise storage_error(f"cannot store {len(rounds)} round(s)", exc) from exc
        added = sum(len(round_.messages) for round_ in rounds)
        if added >= BULK_MESSAGES:
            self._bulk_written += added
            # like autovacuum's threshold: once this engine's bulk writes reach a fifth of what it wrote before
            if self._bulk_written >= ANALYZE_GROWTH * self._analyzed_after:
                self._analyzed_after += self._bulk_written
                self._bulk_written = 0
                self._analyze()

    def _analyze(self) -> None:
        """Refresh the planner's statistics after a bulk write, as PostgreSQL advises after any bulk
        load: until autovacuum gets to it (a minute or more), a table filled without statistics gets
        plans that scan it whole (read-back by id: 30 ms at 10,000 messages against 0.3 ms)."""
        try:
            with self._connection() as conn:
                conn.execute(self.sql("ANALYZE {s}.rounds, {s}.messages"))
        except psycopg.Error as exc:  # statistics only speed reads up; the write is committed
            log.warning("ANALYZE after a bulk write failed: %s", storage_error("analyze", exc))

    def append_messages(self, round_: Round, messages: Sequence[StoredMessage]) -> None:
        """Commit more messages of a stored round; the round is pending again, owned by this engine."""
        scope = round_.scope
        try:
            with self._write() as conn, conn.cursor() as cur:
                # round row, then version row (as mark_stored), then the messages: inserted with the
                # version row locked, so per user seq order is commit order (see insert_round_sql)
                cur.execute(
                    self.sql("UPDATE {s}.rounds SET stored = false, owner = %s WHERE seq = %s"),
                    (self.owner, round_.seq),
                )
                self._bump(conn, [scope.user_id])
                cur.executemany(self.sql(INSERT_MESSAGE), [message_row(m, round_.seq, scope) for m in messages])
        except psycopg.errors.UniqueViolation as exc:
            raise DuplicateMessageError(f"message id already stored: {exc.diag.message_detail}") from exc
        except psycopg.Error as exc:
            raise storage_error(f"cannot append to round {round_.id}", exc) from exc

    def mark_stored(self, round_keys: Sequence[IdKey]) -> list[IdKey]:
        """Record that these rounds' vectors are stored; return the keys of rounds gone meanwhile.

        One statement (one round trip), so the version rows it bumps stay locked only until its
        commit and an ``add`` of the same user never waits on a multi-statement transaction."""
        if not round_keys:
            return []
        keys = ([key.user_id for key in round_keys], [key.id for key in round_keys])
        try:
            with self._connection() as conn:
                keys = {"users": [key.user_id for key in round_keys], "ids": [key.id for key in round_keys]}
                present = conn.execute(self.sql(MARK_STORED), keys).fetchall()
        except psycopg.Error as exc:
            raise storage_error(f"cannot mark {len(round_keys)} round(s) stored", exc) from exc
        found = {IdKey(*row) for row in present}
        return [key for key in round_keys if key not in found]

    def update_messages(self, user_id: str, updates: Sequence[StoredMessage]) -> list[str]:
        """Replace role, content, name and metadata of a user's messages; their rounds are pending again."""
        ids = [m.id for m in updates]
        try:
            with self._write() as conn:
                rows = conn.execute(
                    self.sql(
                        "SELECT m.id, r.id FROM {s}.messages m JOIN {s}.rounds r ON r.seq = m.round_seq "
                        "WHERE m.user_id = %s AND m.id = ANY(%s) FOR UPDATE"
                    ),
                    (user_id, ids),
                ).fetchall()
                missing = set(ids) - {mid for mid, _ in rows}
                if missing:
                    raise InvalidInputError(f"no message of this user with id {', '.join(sorted(missing))}")
                with conn.cursor() as cur:
                    cur.executemany(
                        self.sql(
                            "UPDATE {s}.messages SET role = %s, content = %s, name = %s, metadata = %s "
                            "WHERE user_id = %s AND id = %s"
                        ),
                        [
                            (m.role, m.content, m.name, json.dumps(m.metadata, ensure_ascii=False), user_id, m.id)
                            for m in updates
                        ],
                    )
                touched = sorted({round_id for _, round_id in rows})
                self._repend(conn, user_id, touched)
                self._bump(conn, [user_id], rewrite=True)
        except psycopg.Error as exc:
            raise storage_error(f"cannot update {len(updates)} message(s)", exc) from exc
        return touched

    def _repend(self, conn: psycopg.Connection[Any], user_id: str, round_ids: list[str]) -> None:
        conn.execute(
            self.sql("UPDATE {s}.rounds SET stored = false, owner = %s WHERE user_id = %s AND id = ANY(%s)"),
            (self.owner, user_id, round_ids),
        )

    def delete_session(self, user_id: str, session_id: str) -> int:
        """Delete a session's rounds and messages; return how many messages went."""
        return self._delete("user_id = %s AND session_id = %s", (user_id, session_id), user_id)

    def delete_user(self, user_id: str) -> int:
        """Delete every round and message of a user; return how many messages went."""
        return self._delete("user_id = %s", (user_id,), user_id)

    def delete_messages(self, user_id: str, message_ids: Sequence[str]) -> tuple[int, list[str], list[str]]:
        """Delete a user's messages by id: (count, rounds emptied and deleted, rounds kept and pending again)."""
        try:
            with self._write() as conn:
                rows = conn.execute(
                    self.sql(
                        "DELETE FROM {s}.messages m USING {s}.rounds r WHERE r.seq = m.round_seq "
                        "AND m.user_id = %s AND m.id = ANY(%s) RETURNING r.id"
                    ),
                    (user_id, list(message_ids)),
                ).fetchall()
                touched = sorted({row[0] for row in rows})
                emptied = [
                    row[0]
                    for row in conn.execute(
                        self.sql(
                            "DELETE FROM {s}.rounds r WHERE r.user_id = %s AND r.id = ANY(%s) AND NOT EXISTS "
                            "(SELECT 1 FROM {s}.messages m WHERE m.round_seq = r.seq) RETURNING r.id"
                        ),
                        (user_id, touched),
                    ).fetchall()
                ]
                kept = [rid for rid in touched if rid not in emptied]
                self._repend(conn, user_id, kept)
                if rows:
                    self._bump(conn, [user_id], rewrite=True)
        except psycopg.Error as exc:
            raise storage_error(f"cannot delete {len(message_ids)} message(s)", exc) from exc
        return len(rows), sorted(emptied), kept

    def _delete(self, where: str, args: tuple[str, ...], user_id: str) -> int:
        try:
            with self._write() as conn:
                row = conn.execute(self.sql(f"SELECT count(*) FROM {{s}}.messages WHERE {where}"), args).fetchone()
                conn.execute(self.sql(f"DELETE FROM {{s}}.rounds WHERE {where}"), args)
                count = int(row[0]) if row else 0
                if count:
                    self._bump(conn, [user_id], rewrite=True)
        except psycopg.Error as exc:
            raise storage_error("cannot delete messages", exc) from exc
        return count
