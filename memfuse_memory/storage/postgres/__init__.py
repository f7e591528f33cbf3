"""The PostgreSQL message store: one database shared by replicas on several hosts.

The same contract as the SQLite store (``storage.sqlite``): every write is one transaction that
commits before it returns; a per-user version row changes in the same transaction as every change
of a user's messages or of a round's stored flag (and its ``rewrites`` count with every delete or
edit). Each host's in-memory keyword index catches up from ``messages`` before each search
(:mod:`memfuse_memory.storage.keyword_index`), so it sees a message the moment ``add`` returns on
any host, and starts over when another host deleted or edited one.

Rounds carry an ``owner``: the engine that buffers them. Each engine holds a session advisory
lock on its owner key for as long as it lives, so a pending round whose owner's lock is free was
left by a dead engine; a live engine claims such rounds in one ``UPDATE ... WHERE owner = dead``
(row locks make the claim exactly-once) and indexes them.

Files: ``schema`` (DDL and migrations, a version table), ``dsn`` (DSN parsing and redaction),
``connection`` (pool, transactions, owner lock, error mapping), ``writes``, ``reads``,
``keywords`` (the keyword index's feed), and ``store`` (:class:`PostgresMessageStore`).
"""

from memfuse_memory.storage.postgres.dsn import redact_dsn
from memfuse_memory.storage.postgres.store import PostgresMessageStore

__all__ = ["PostgresMessageStore", "redact_dsn"]
