"""The SQLite message store: WAL mode, the durable source of truth.

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

Files: ``schema`` (tables, triggers, row mapping), ``connection`` (per-thread connections,
write transactions, store id), ``writes``, ``reads``, ``keywords`` (FTS5 BM25), and ``store``
(:class:`MessageStore`, the three sides together).
"""

from memfuse_memory.storage.sqlite.keywords import COMMON_TERM_MIN_DOCS
from memfuse_memory.storage.sqlite.schema import FILE_NAME, user_token
from memfuse_memory.storage.sqlite.store import MessageStore

__all__ = ["COMMON_TERM_MIN_DOCS", "FILE_NAME", "MessageStore", "user_token"]
