"""The message store: SQLite in WAL mode, the durable source of truth.

Every acknowledged message is committed here before ``add`` returns; the buffers and the vector
index are derived from it. Rounds carry a ``stored`` flag, set once their vectors are in the
vector store, so a restart re-indexes exactly what was acknowledged but not yet stored. An FTS5
table over message contents (kept in step by triggers, in the same transaction as the insert)
is the keyword store, so keyword search sees a message the moment ``add`` returns.

Several processes may share one file (WAL, ``BEGIN IMMEDIATE`` writes, a busy timeout). Two
tables serve them: ``meta`` holds the store id that names this store's vector collections, and
``user_versions`` holds a per-user counter that triggers bump in the same transaction as every
insert or delete of a user's messages and every change of a round's ``stored`` flag, so a query
cache in any process can tell whether a user's data changed since it computed an answer.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from memfuse_memory.errors import DuplicateMessageError, InvalidInputError, StorageError
from memfuse_memory.models import QueryRequest, Round, Scope, StoredMessage, from_micros, to_micros
from memfuse_memory.ranking.keywords import informative, match_expression, query_terms
from memfuse_memory.storage.term_stats import TOKENIZER, term_stats

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS rounds (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    user_id    TEXT    NOT NULL,
    agent_id   TEXT,
    session_id TEXT    NOT NULL,
    created_us INTEGER NOT NULL,
    stored     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS rounds_pending ON rounds (seq) WHERE stored = 0;
CREATE INDEX IF NOT EXISTS rounds_scope ON rounds (user_id, session_id);
CREATE TABLE IF NOT EXISTS messages (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    round_seq  INTEGER NOT NULL REFERENCES rounds (seq) ON DELETE CASCADE,
    user_id    TEXT    NOT NULL,
    user_token TEXT    NOT NULL,
    agent_id   TEXT,
    session_id TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    content    TEXT    NOT NULL,
    name       TEXT,
    created_us INTEGER NOT NULL,
    metadata   TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_session ON messages (user_id, session_id, seq);
CREATE INDEX IF NOT EXISTS messages_round ON messages (round_seq);
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5 (
    content, user_token,
    content = 'messages', content_rowid = 'seq',
    tokenize = '{TOKENIZER}'
);
CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, content, user_token) VALUES (new.seq, new.content, new.user_token);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content, user_token)
    VALUES ('delete', old.seq, old.content, old.user_token);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content, user_token)
    VALUES ('delete', old.seq, old.content, old.user_token);
    INSERT INTO messages_fts (rowid, content, user_token) VALUES (new.seq, new.content, new.user_token);
END;
CREATE TRIGGER IF NOT EXISTS messages_version_update AFTER UPDATE OF role, content, name, metadata ON messages BEGIN
    INSERT INTO user_versions (user_id, version) VALUES (new.user_id, 1)
    ON CONFLICT (user_id) DO UPDATE SET version = version + 1;
END;
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS user_versions (
    user_id TEXT    PRIMARY KEY,
    version INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS messages_version_insert AFTER INSERT ON messages BEGIN
    INSERT INTO user_versions (user_id, version) VALUES (new.user_id, 1)
    ON CONFLICT (user_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS messages_version_delete AFTER DELETE ON messages BEGIN
    INSERT INTO user_versions (user_id, version) VALUES (old.user_id, 1)
    ON CONFLICT (user_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS rounds_version_stored AFTER UPDATE OF stored ON rounds
WHEN new.stored <> old.stored BEGIN
    INSERT INTO user_versions (user_id, version) VALUES (new.user_id, 1)
    ON CONFLICT (user_id) DO UPDATE SET version = version + 1;
END;
"""

FILE_NAME = "messages.sqlite3"
COMMON_TERM_MIN_DOCS = 500  # below this many hits a common word costs little, so it is kept

_MESSAGE_COLUMNS = (
    "m.seq, m.id, m.role, m.content, m.name, m.created_us, m.metadata, m.user_id, m.agent_id, m.session_id, r.id"
)


def user_token(user_id: str) -> str:
    """An opaque word standing for a user inside the FTS index, so user scoping is an index lookup."""
    return "u" + hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:24]


def _message(row: sqlite3.Row | tuple[Any, ...]) -> StoredMessage:
    seq, mid, role, content, name, created_us, metadata, user_id, agent_id, session_id, round_id = row
    return StoredMessage(
        id=mid,
        role=role,
        content=content,
        name=name,
        created_at=from_micros(created_us),
        metadata=json.loads(metadata),
        scope=Scope(user_id=user_id, session_id=session_id, agent_id=agent_id),
        round_id=round_id,
        seq=seq,
    )


def _message_row(message: StoredMessage, round_seq: int, scope: Scope, token: str) -> tuple[Any, ...]:
    return (
        message.id,
        round_seq,
        scope.user_id,
        token,
        scope.agent_id,
        scope.session_id,
        message.role,
        message.content,
        message.name,
        to_micros(message.created_at),
        json.dumps(message.metadata, ensure_ascii=False),
    )


class MessageStore:
    """Thread-safe access to the SQLite file: one connection per thread, WAL, short transactions."""

    def __init__(
        self, path: Path, *, synchronous: str = "NORMAL", busy_timeout_ms: int = 5000, read_only: bool = False
    ) -> None:
        """Open (and create, unless ``read_only``) the store; read-only opens work beside a live writer."""
        self.path = path
        self.read_only = read_only
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self.store_id = ""
        try:
            if read_only:
                if not path.is_file():
                    raise StorageError(f"no message store at {path}")
                self._connection()
                self.store_id = self._read_store_id() or ""
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            self._connection().executescript(_SCHEMA)
            self.store_id = self._ensure_store_id()
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open the message store at {path}: {exc}") from exc

    def _read_store_id(self) -> str | None:
        try:
            row = self._connection().execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
        except sqlite3.OperationalError:
            return None
        return None if row is None else str(row[0])

    def _ensure_store_id(self) -> str:
        """This store's id, created once (whichever process opens the file first wins).

        A store that already held rounds before it had an id keeps the empty id, so its
        existing vector collections keep their names.
        """
        found = self._read_store_id()
        if found is not None:
            return found
        with self._write() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
            if row is not None:
                return str(row[0])
            legacy = conn.execute("SELECT EXISTS (SELECT 1 FROM rounds)").fetchone()[0]
            value = "" if legacy else secrets.token_hex(8)
            conn.execute("INSERT INTO meta (key, value) VALUES ('store_id', ?)", (value,))
            return value

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StorageError("the message store is closed")
            target = self.path.resolve().as_uri() + "?mode=ro" if self.read_only else str(self.path)
            conn = sqlite3.connect(
                target,
                uri=self.read_only,
                isolation_level=None,
                check_same_thread=False,
                timeout=self._busy_timeout_ms / 1000,
            )
            if not self.read_only:
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conn in self._connections:
                with suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()
        self._local = threading.local()

    # -- writes -------------------------------------------------------------------------------

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
                        [_message_row(m, round_.seq, scope, token) for m in round_.messages],
                    )
        except sqlite3.IntegrityError as exc:
            taken = self.existing_ids([m.id for r in rounds for m in r.messages])
            if taken:
                raise DuplicateMessageError(f"message id(s) already stored: {', '.join(sorted(taken))}") from exc
            marks = ",".join("?" * len(rounds))
            rows = self._read(f"SELECT id FROM rounds WHERE id IN ({marks})", [r.id for r in rounds])
            if rows:
                raise DuplicateMessageError(
                    f"round id(s) already stored: {', '.join(sorted(r[0] for r in rows))}"
                ) from exc
            raise StorageError(f"cannot store {len(rounds)} round(s): {exc}") from exc
        except sqlite3.Error as exc:
            raise StorageError(f"cannot store {len(rounds)} round(s): {exc}") from exc

    def append_messages(self, round_: Round, messages: Sequence[StoredMessage]) -> None:
        """Commit more messages of an already stored round, durably, in one transaction."""
        scope = round_.scope
        token = user_token(scope.user_id)
        try:
            with self._write() as conn:
                conn.executemany(
                    "INSERT INTO messages (id, round_seq, user_id, user_token, agent_id, session_id, role, content,"
                    " name, created_us, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [_message_row(m, round_.seq, scope, token) for m in messages],
                )
        except sqlite3.IntegrityError as exc:
            taken = self.existing_ids([m.id for m in messages])
            raise DuplicateMessageError(f"message id(s) already stored: {', '.join(sorted(taken))}") from exc
        except sqlite3.Error as exc:
            raise StorageError(f"cannot append to round {round_.id}: {exc}") from exc

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """The message ids among ``ids`` that are already stored."""
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            part = list(ids[start : start + 500])
            marks = ",".join("?" * len(part))
            found.update(row[0] for row in self._read(f"SELECT id FROM messages WHERE id IN ({marks})", part))
        return found

    def mark_stored(self, round_ids: Sequence[str]) -> list[str]:
        """Record that these rounds' vectors are in the vector store.

        Returns the ids of rounds that are gone (deleted meanwhile, possibly by another process),
        so the caller can remove the vectors it has just written for them.
        """
        if not round_ids:
            return []
        try:
            with self._write() as conn:
                return [
                    rid
                    for rid in round_ids
                    if conn.execute("UPDATE rounds SET stored = 1 WHERE id = ?", (rid,)).rowcount == 0
                ]
        except sqlite3.Error as exc:
            raise StorageError(f"cannot mark {len(round_ids)} round(s) stored: {exc}") from exc

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
                    f"SELECT m.seq, r.id FROM messages m JOIN rounds r ON r.seq = m.round_seq "
                    f"WHERE m.user_id = ? AND m.id IN ({marks})",
                    (user_id, *message_ids),
                ).fetchall()
                touched = sorted({round_id for _, round_id in rows})
                conn.executemany("DELETE FROM messages WHERE seq = ?", [(seq,) for seq, _ in rows])
                emptied: list[str] = []
                for round_id in touched:
                    left = conn.execute(
                        "SELECT COUNT(*) FROM messages m JOIN rounds r ON r.seq = m.round_seq WHERE r.id = ?",
                        (round_id,),
                    ).fetchone()[0]
                    if left:
                        conn.execute("UPDATE rounds SET stored = 0 WHERE id = ?", (round_id,))
                    else:
                        conn.execute("DELETE FROM rounds WHERE id = ?", (round_id,))
                        emptied.append(round_id)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot delete {len(message_ids)} message(s): {exc}") from exc
        return len(rows), emptied, [rid for rid in touched if rid not in emptied]

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
                conn.executemany("UPDATE rounds SET stored = 0 WHERE id = ?", [(rid,) for rid in touched])
        except KeyError as exc:
            raise InvalidInputError(f"no message of this user with id {', '.join(exc.args[0])}") from exc
        except sqlite3.Error as exc:
            raise StorageError(f"cannot update {len(updates)} message(s): {exc}") from exc
        return touched

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
        clauses, args = [], []
        if user_id is not None:
            clauses.append("m.user_id = ?")
            args.append(user_id)
        if session_id is not None:
            clauses.append("m.session_id = ?")
            args.append(session_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {_MESSAGE_COLUMNS} FROM messages m JOIN rounds r ON r.seq = m.round_seq {where} ORDER BY m.seq"
        return [_message(row) for row in self._read(sql, args)]

    def sessions(self, user_id: str) -> list[dict[str, Any]]:
        """A user's sessions with message counts and first/last message times, oldest first."""
        rows = self._read(
            "SELECT session_id, agent_id, COUNT(*), MIN(created_us), MAX(created_us), MIN(seq) FROM messages "
            "WHERE user_id = ? GROUP BY session_id, agent_id ORDER BY MIN(seq)",
            (user_id,),
        )
        return [
            {
                "session_id": session,
                "agent_id": agent,
                "messages": count,
                "first_at": from_micros(first),
                "last_at": from_micros(last),
            }
            for session, agent, count, first, last, _ in rows
        ]

    def _delete(self, where: str, args: tuple[str, ...]) -> int:
        try:
            with self._write() as conn:
                count = conn.execute(f"SELECT COUNT(*) FROM messages WHERE {where}", args).fetchone()[0]
                conn.execute(f"DELETE FROM messages WHERE {where}", args)
                conn.execute(f"DELETE FROM rounds WHERE {where}", args)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot delete messages: {exc}") from exc
        return int(count)

    # -- reads --------------------------------------------------------------------------------

    def _read(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            return self._connection().execute(sql, list(args)).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"message store read failed: {exc}") from exc

    def pending_round_ids(self) -> set[str]:
        """Ids of the rounds acknowledged but not yet in the vector store."""
        return {row[0] for row in self._read("SELECT id FROM rounds WHERE stored = 0", ())}

    def pending_rounds(self) -> list[Round]:
        """Rounds acknowledged but not yet in the vector store, in the order they were added."""
        return self._rounds("r.stored = 0", ())

    def rounds_by_id(self, round_ids: Sequence[str]) -> list[Round]:
        """The given rounds with their remaining messages, in the order they were added."""
        if not round_ids:
            return []
        return self._rounds(f"r.id IN ({','.join('?' * len(round_ids))})", tuple(round_ids))

    def _rounds(self, where: str, args: tuple[Any, ...]) -> list[Round]:
        rows = self._read(
            f"SELECT {_MESSAGE_COLUMNS}, r.seq FROM rounds r JOIN messages m ON m.round_seq = r.seq "
            f"WHERE {where} ORDER BY r.seq, m.seq",
            args,
        )
        rounds: dict[str, Round] = {}
        for row in rows:
            message = _message(row[:-1])
            current = rounds.get(message.round_id)
            if current is None:
                current = rounds[message.round_id] = Round(
                    id=message.round_id, scope=message.scope, messages=[], seq=row[-1]
                )
            current.messages.append(message)
        return list(rounds.values())

    def session_messages(
        self, user_id: str, session_id: str, *, pending_only: bool, limit: int | None, order: str
    ) -> list[StoredMessage]:
        """A session's messages in the order they were added; ``limit`` keeps the latest ones."""
        sql = (
            f"SELECT {_MESSAGE_COLUMNS} FROM messages m JOIN rounds r ON r.seq = m.round_seq "
            "WHERE m.user_id = ? AND m.session_id = ?"
        )
        if pending_only:
            sql += " AND r.stored = 0"
        sql += " ORDER BY m.seq DESC"
        args: list[Any] = [user_id, session_id]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        messages = [_message(row) for row in self._read(sql, args)]
        if order == "asc":
            messages.reverse()
        return messages

    def messages_by_id(self, ids: Sequence[str]) -> dict[str, StoredMessage]:
        """The stored messages among ``ids``; missing (deleted) ids are left out."""
        found: dict[str, StoredMessage] = {}
        for start in range(0, len(ids), 500):
            part = list(ids[start : start + 500])
            marks = ",".join("?" * len(part))
            rows = self._read(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages m JOIN rounds r ON r.seq = m.round_seq "
                f"WHERE m.id IN ({marks})",
                part,
            )
            for row in rows:
                message = _message(row)
                found[message.id] = message
        return found

    def keyword_search(self, request: QueryRequest, limit: int) -> dict[str, float]:
        """BM25 over message contents within the request's scope: message id -> score (higher is better)."""
        words = query_terms(request.text)
        if not words:
            return {}
        try:
            stems, doc_freq, total = term_stats(self._connection(), words, COMMON_TERM_MIN_DOCS)
        except sqlite3.Error as exc:
            raise StorageError(f"message store read failed: {exc}") from exc
        match = match_expression(informative(words, stems, doc_freq, total, COMMON_TERM_MIN_DOCS))
        if match is None:
            return {}
        expression = f'user_token : "{user_token(request.user_id)}" AND content : ({match})'
        sql = (
            "SELECT m.id, bm25(messages_fts, 1.0, 0.0) FROM messages_fts JOIN messages m ON m.seq = messages_fts.rowid "
            "WHERE messages_fts MATCH ? AND m.user_id = ?"
        )
        args: list[Any] = [expression, request.user_id]
        if request.session_id is not None:
            sql += " AND m.session_id = ?"
            args.append(request.session_id)
        if request.agent_id is not None:
            sql += " AND m.agent_id = ?"
            args.append(request.agent_id)
        if request.since is not None:
            sql += " AND m.created_us >= ?"
            args.append(request.since)
        if request.until is not None:
            sql += " AND m.created_us <= ?"
            args.append(request.until)
        sql += " ORDER BY bm25(messages_fts, 1.0, 0.0) LIMIT ?"
        args.append(limit)
        return {mid: -float(score) for mid, score in self._read(sql, args)}

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
