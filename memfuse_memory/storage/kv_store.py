"""The key-value table: items addressed by (user, agent, namespace, key), beside the messages.

It lives in the message store's database: the SQLite file (``storage.sqlite.kv``) or the
PostgreSQL schema (``storage.postgres.kv``), so on PostgreSQL every host sees the same items.
This class holds every statement, once, for both (see ``kv_dialect``). Every get, put and delete
is one statement on the primary key, so they cost the same at 20 items or 20,000; a put returns
after its commit. ``kv_namespaces`` counts the items of each namespace (kept by triggers in the
same transaction), so listing namespaces reads an index, not the items.

Times are integer microseconds since the epoch; ``expires_us`` is NULL for an item without a TTL.
An expired item is invisible to every read at once and deleted by ``sweep``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from memfuse_memory.storage.kv_dialect import KVDialect
from memfuse_memory.storage.kv_query import compile_filter, decode_namespace, encode_namespace, prefix_condition

_ITEMS = "{s}.kv_items"
_NAMESPACES = "{s}.kv_namespaces"
_META = "{s}.kv_meta"
_KEY = "user_id = ? AND agent_id = ? AND namespace = ? AND key = ?"
_LIVE = "(expires_us IS NULL OR expires_us > ?)"
_NAMES = "user_id, agent_id, namespace, key, value, created_us, updated_us, expires_us, ttl_minutes, vectors"
_MICROS_PER_MINUTE = 60_000_000

Address = tuple[str, str, tuple[str, ...], str]


@dataclass(frozen=True, slots=True)
class KVRow:
    """One stored item: its address, JSON value text and times (microseconds)."""

    user_id: str
    agent_id: str
    namespace: tuple[str, ...]
    key: str
    value: str
    created_us: int
    updated_us: int
    expires_us: int | None = None
    ttl_minutes: float | None = None
    vectors: int = 0


@dataclass(frozen=True, slots=True)
class KVWrite:
    """A put (``value`` set) or a delete (``value`` None) of one item."""

    user_id: str
    agent_id: str
    namespace: tuple[str, ...]
    key: str
    value: str | None
    ttl_minutes: float | None = None
    vectors: int = 0


def _row(values: Sequence[Any]) -> KVRow:
    user, agent, namespace, key, value, created, updated, expires, ttl, vectors = values
    ttl = None if ttl is None else float(ttl)
    return KVRow(user, agent, decode_namespace(namespace), key, value, created, updated, expires, ttl, vectors)


def _expiry(now_us: int, ttl_minutes: float | None) -> int | None:
    return None if ttl_minutes is None else now_us + int(ttl_minutes * _MICROS_PER_MINUTE)


def _address(row: KVRow) -> tuple[str, str, str, str]:
    """The stored primary key of a row (also the order writes take their locks in)."""
    return (row.user_id, row.agent_id, encode_namespace(row.namespace), row.key)


def _stored(row: KVRow) -> tuple[Any, ...]:
    return (
        row.user_id,
        row.agent_id,
        encode_namespace(row.namespace),
        row.key,
        row.value,
        row.created_us,
        row.updated_us,
        row.expires_us,
        row.ttl_minutes,
        row.vectors,
    )


class KVStore:
    """The key-value table on one database (a :class:`KVDialect`); thread-safe as its dialect is."""

    def __init__(self, dialect: KVDialect) -> None:
        self.dialect = dialect
        self.location = dialect.location
        self._columns = _NAMES.replace("value", dialect.value_out, 1)
        self._values = ", ".join(["?"] * 4 + [dialect.value_in] + ["?"] * 5)

    def close(self) -> None:
        self.dialect.close()

    def _read(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self.dialect.read(sql, args)

    # -- single items ---------------------------------------------------------------------------

    def get(
        self, user_id: str, agent_id: str, namespace: Sequence[str], key: str, *, now_us: int, refresh: bool
    ) -> KVRow | None:
        """The live item at an address; ``refresh`` restarts its TTL (one statement either way)."""
        address = (user_id, agent_id, encode_namespace(namespace), key)
        if refresh:
            with self.dialect.write() as tx:
                found = tx.execute(
                    f"UPDATE {_ITEMS} SET expires_us = ? + CAST(ttl_minutes * {_MICROS_PER_MINUTE} AS BIGINT) "
                    f"WHERE {_KEY} AND ttl_minutes IS NOT NULL AND expires_us > ? RETURNING {self._columns}",
                    (now_us, *address, now_us),
                ).fetchone()
            if found is not None:
                return _row(found)
        rows = self._read(f"SELECT {self._columns} FROM {_ITEMS} WHERE {_KEY} AND {_LIVE}", (*address, now_us))
        return _row(rows[0]) if rows else None

    def apply(
        self, writes: Sequence[KVWrite], *, now_us: int, track_vectors: bool = True
    ) -> dict[tuple[str, str, str, str], int]:
        """Commit puts and deletes in one transaction; returns the vector counts the writes replaced,
        by stored address (namespace as its text).

        Each write is one statement on the primary key (a put also reads the replaced vector count
        when ``track_vectors``). A replaced item keeps its ``created_us``; an expired item that is
        put again starts afresh. Writes run in address order, so concurrent transactions take
        their row locks in one order (PostgreSQL) and never deadlock.
        """
        replaced: dict[tuple[str, str, str, str], int] = {}
        if not writes:
            return replaced
        ordered = sorted(writes, key=lambda w: (w.user_id, w.agent_id, encode_namespace(w.namespace), w.key))
        upsert = (
            f"INSERT INTO {_ITEMS} AS t ({_NAMES}) VALUES ({self._values}) "
            "ON CONFLICT (user_id, agent_id, namespace, key) DO UPDATE SET "
            "value = excluded.value, updated_us = excluded.updated_us, expires_us = excluded.expires_us, "
            "ttl_minutes = excluded.ttl_minutes, vectors = excluded.vectors, created_us = CASE WHEN "
            "t.expires_us IS NULL OR t.expires_us > ? THEN t.created_us ELSE excluded.created_us END"
        )
        with self.dialect.write() as tx:
            for write in ordered:
                address = (write.user_id, write.agent_id, encode_namespace(write.namespace), write.key)
                if write.value is None:
                    old = tx.execute(f"DELETE FROM {_ITEMS} WHERE {_KEY} RETURNING vectors", address).fetchone()
                elif track_vectors:
                    old = tx.execute(f"SELECT vectors FROM {_ITEMS} WHERE {_KEY}", address).fetchone()
                else:
                    old = None
                if write.value is not None:
                    expires = _expiry(now_us, write.ttl_minutes)
                    values = (*address, write.value, now_us, now_us, expires, write.ttl_minutes, write.vectors)
                    tx.execute(upsert, (*values, now_us))
                if old is not None and old[0]:
                    replaced[address] = int(old[0])
        return replaced

    # -- many items -----------------------------------------------------------------------------

    def search(
        self,
        users: Sequence[str] | None,
        agent_id: str,
        prefix: Sequence[str],
        wanted: Mapping[str, Any] | None,
        *,
        limit: int,
        offset: int,
        now_us: int,
        refresh: bool,
        indexed: bool | None = None,
    ) -> list[KVRow]:
        """Live items under ``prefix`` that match the filter, newest update first, paged in SQL.

        ``users`` None spans every user of the agent space; ``indexed`` keeps only items with
        (True) or without (False) vectors.
        """
        where, params = self._where(users, agent_id, prefix, wanted, now_us)
        if indexed is not None:
            where += " AND vectors > 0" if indexed else " AND vectors = 0"
        rows = self._read(
            f"SELECT {self._columns} FROM {_ITEMS} WHERE {where} "
            "ORDER BY updated_us DESC, namespace, key LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        found = [_row(row) for row in rows]
        if refresh:
            found = self.refresh(found, now_us=now_us)
        return found

    def lookup(
        self, addresses: Sequence[Address], wanted: Mapping[str, Any] | None, *, now_us: int
    ) -> dict[Address, KVRow]:
        """The live items at these addresses that match the filter (for ranked vector hits)."""
        found: dict[Address, KVRow] = {}
        condition, params = compile_filter(wanted, self.dialect.filters)
        for start in range(0, len(addresses), 200):
            chunk = addresses[start : start + 200]
            keys = " OR ".join(f"({_KEY})" for _ in chunk)
            args = [part for user, agent, ns, key in chunk for part in (user, agent, encode_namespace(ns), key)]
            rows = self._read(
                f"SELECT {self._columns} FROM {_ITEMS} WHERE ({keys}) AND {_LIVE} AND {condition}",
                (*args, now_us, *params),
            )
            for row in map(_row, rows):
                found[(row.user_id, row.agent_id, row.namespace, row.key)] = row
        return found

    def refresh(self, rows: Sequence[KVRow], *, now_us: int) -> list[KVRow]:
        """Restart the TTL of the given live items (those that have one)."""
        timed = sorted((row for row in rows if row.ttl_minutes is not None), key=_address)
        if not timed:
            return list(rows)
        with self.dialect.write() as tx:
            tx.executemany(
                f"UPDATE {_ITEMS} SET expires_us = ? WHERE {_KEY} AND expires_us > ?",
                [(_expiry(now_us, r.ttl_minutes), *_address(r), now_us) for r in timed],
            )
        return [
            row if row.ttl_minutes is None else replace(row, expires_us=_expiry(now_us, row.ttl_minutes))
            for row in rows
        ]

    def namespaces(
        self, users: Sequence[str] | None, agent_id: str, prefix: Sequence[str], *, now_us: int
    ) -> list[tuple[str, ...]]:
        """Namespaces holding at least one live item under ``prefix`` (from the namespace index)."""
        scope, params = self._scope(users, agent_id, "n.")
        under, more = prefix_condition(prefix, "n.namespace")
        rows = self._read(
            f"SELECT DISTINCT n.namespace FROM {_NAMESPACES} n WHERE {scope} AND {under} AND EXISTS ("
            f"SELECT 1 FROM {_ITEMS} i WHERE i.user_id = n.user_id AND i.agent_id = n.agent_id "
            "AND i.namespace = n.namespace AND (i.expires_us IS NULL OR i.expires_us > ?)) ORDER BY n.namespace",
            (*params, *more, now_us),
        )
        return [decode_namespace(row[0]) for row in rows]

    def users(self, agent_id: str) -> list[str]:
        """Users holding items in an agent space."""
        rows = self._read(f"SELECT DISTINCT user_id FROM {_NAMESPACES} WHERE agent_id = ?", (agent_id,))
        return [row[0] for row in rows]

    def clear_vectors(self, addresses: Sequence[Address], *, updated_us: int) -> None:
        """Record that the items written at ``updated_us`` have no vectors (their indexing failed)."""
        with self.dialect.write() as tx:
            tx.executemany(
                f"UPDATE {_ITEMS} SET vectors = 0 WHERE {_KEY} AND updated_us = ?",
                [(user, agent, encode_namespace(ns), key, updated_us) for user, agent, ns, key in sorted(addresses)],
            )

    def sweep(self, *, now_us: int, limit: int = 1000) -> list[KVRow]:
        """Delete up to ``limit`` expired items; returns them (so their vectors can go too).

        The items are deleted one by one in address order, the order puts take their locks in, so a
        sweep never deadlocks with a batch of puts on another host; an item put again meanwhile stays.
        """
        with self.dialect.write() as tx:
            expired = tx.execute(
                f"SELECT {self._columns} FROM {_ITEMS} WHERE expires_us <= ? "
                "ORDER BY user_id, agent_id, namespace, key LIMIT ?",
                (now_us, limit),
            ).fetchall()
            rows = [_row(values) for values in expired]
            tx.executemany(
                f"DELETE FROM {_ITEMS} WHERE {_KEY} AND expires_us <= ?", [(*_address(r), now_us) for r in rows]
            )
        return rows

    def delete_user(self, user_id: str) -> int:
        """Delete every item of a user (every agent space); returns how many."""
        with self.dialect.write() as tx:
            return int(tx.execute(f"DELETE FROM {_ITEMS} WHERE user_id = ?", (user_id,)).rowcount)

    def meta(self, key: str) -> str | None:
        rows = self._read(f"SELECT value FROM {_META} WHERE key = ?", (key,))
        return None if not rows else str(rows[0][0])

    def set_meta(self, key: str, value: str) -> None:
        with self.dialect.write() as tx:
            tx.execute(
                f"INSERT INTO {_META} (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def import_rows(self, rows: Sequence[KVRow]) -> int:
        """Insert items with their own times (a migration); an existing address keeps its item.
        Returns how many were inserted."""
        if not rows:
            return 0
        sql = f"INSERT INTO {_ITEMS} ({_NAMES}) VALUES ({self._values}) ON CONFLICT DO NOTHING RETURNING 1"
        inserted = 0
        with self.dialect.write() as tx:
            for row in rows:
                inserted += len(tx.execute(sql, _stored(row)).fetchall())
        return inserted

    def export_rows(self, *, after: tuple[str, str, str, str] | None = None, limit: int = 1000) -> list[KVRow]:
        """Up to ``limit`` items (expired ones too) in address order, after the address ``after``."""
        where, args = ("TRUE", []) if after is None else ("(user_id, agent_id, namespace, key) > (?, ?, ?, ?)", after)
        rows = self._read(
            f"SELECT {self._columns} FROM {_ITEMS} WHERE {where} ORDER BY user_id, agent_id, namespace, key LIMIT ?",
            (*args, limit),
        )
        return [_row(values) for values in rows]

    # -- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _scope(users: Sequence[str] | None, agent_id: str, alias: str = "") -> tuple[str, list[Any]]:
        if users is None:
            return f"{alias}agent_id = ?", [agent_id]
        marks = ", ".join("?" for _ in users) or "NULL"
        return f"{alias}agent_id = ? AND {alias}user_id IN ({marks})", [agent_id, *users]

    def _where(
        self,
        users: Sequence[str] | None,
        agent_id: str,
        prefix: Sequence[str],
        wanted: Mapping[str, Any] | None,
        now_us: int,
    ) -> tuple[str, list[Any]]:
        scope, params = self._scope(users, agent_id)
        under, more = prefix_condition(prefix)
        condition, values = compile_filter(wanted, self.dialect.filters)
        return f"{scope} AND {under} AND {_LIVE} AND {condition}", [*params, *more, now_us, *values]
