"""Document frequencies of query words in the FTS5 index, read through the index's own tokenizer.

The query words are stemmed by a temporary FTS5 table with the index's tokenizer (so the stems
are exactly the index's terms) and looked up in an ``fts5vocab`` view of the index. Both tables
live in the connection's ``temp`` schema: nothing is added to the database file.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict

TOKENIZER = "porter unicode61 remove_diacritics 2"

_SETUP = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.mf_query USING fts5 (word, tokenize = '{TOKENIZER}')",
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.mf_query_terms USING fts5vocab (temp, mf_query, instance)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.mf_index_terms USING fts5vocab (main, messages_fts, row)",
)


def term_stats(
    conn: sqlite3.Connection, words: list[str], min_total: int = 0
) -> tuple[dict[str, list[str]], dict[str, int], int]:
    """Each word's index terms, each term's document count, and the number of indexed messages.

    Below ``min_total`` indexed messages only the count is read (no term can be common then).
    """
    (total,) = conn.execute("SELECT count(*) FROM messages").fetchone()
    if total < min_total:
        return {}, {}, int(total)
    for statement in _SETUP:
        conn.execute(statement)
    stems: dict[str, list[str]] = defaultdict(list)
    # one transaction: in autocommit mode every inserted word would be a transaction of its own
    conn.execute("BEGIN")
    try:
        conn.execute("DELETE FROM temp.mf_query")
        conn.executemany("INSERT INTO temp.mf_query (rowid, word) VALUES (?, ?)", list(enumerate(words)))
        for term, row in conn.execute("SELECT term, doc FROM temp.mf_query_terms ORDER BY doc, offset"):
            stems[words[row]].append(term)
        conn.execute("DELETE FROM temp.mf_query")
    finally:
        conn.execute("COMMIT")
    terms = sorted({term for found in stems.values() for term in found})
    marks = ",".join("?" * len(terms))
    rows = conn.execute(f"SELECT term, doc FROM temp.mf_index_terms WHERE term IN ({marks})", terms).fetchall()
    doc_freq = {str(term): int(count) for term, count in rows}
    return dict(stems), doc_freq, int(total)
