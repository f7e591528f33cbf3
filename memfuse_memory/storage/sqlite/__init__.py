"""The SQLite message store: WAL mode, the durable source of truth.

Every acknowledged message is committed here before ``add`` returns; the buffers and the vector
index are derived from it. Rounds carry a ``stored`` flag, set once their vectors are in the
vector store, so a restart re-indexes exactly what was acknowledged but not yet stored. Keyword
search reads a per-user index in memory that catches up with this table before each search
(:mod:`memfuse_memory.storage.keyword_index`), so it sees a message the moment ``add`` returns.

Several processes may share one file (WAL, ``BEGIN IMMEDIATE`` writes, a busy timeout). Two
tables serve them: ``meta`` holds the store id that names this store's vector collections, and
``user_versions`` holds a per-user counter that triggers bump in the same transaction as every
insert or delete of a user's messages and every change of a round's ``stored`` flag, so a query
cache in any process can tell whether a user's data changed since it computed an answer;
``user_rewrites`` counts each user's deletes and edits, so every process's keyword index knows
when to start over.

Files: ``schema`` (tables, triggers, row mapping), ``connection`` (per-thread connections,
write transactions, store id), ``writes``, ``reads``, ``keywords`` (the keyword index's feed), and ``store``
(:class:`MessageStore`, the three sides together).
"""

from memfuse_memory.storage.sqlite.schema import FILE_NAME, user_token
from memfuse_memory.storage.sqlite.store import MessageStore

__all__ = ["FILE_NAME", "MessageStore", "user_token"]
