"""Turn free text into a safe SQLite FTS5 query: words only, stop words and too-common words removed, OR-ed."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_QUERY_TERMS = 64  # distinct words a keyword query keeps (the first ones); a longer text is truncated

STOP_WORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
    ]
)


def query_terms(text: str, limit: int = MAX_QUERY_TERMS) -> list[str]:
    """Lower-cased words of ``text`` without stop words, first occurrence order, no repeats,
    at most ``limit`` of them: a pasted document must not turn one query into thousands of
    index lookups (each distinct word costs a doclist read and a BM25 phrase)."""
    seen: dict[str, None] = {}
    for match in _WORD.finditer(text.lower()):
        word = match.group()
        if word not in STOP_WORDS:
            seen.setdefault(word, None)
            if len(seen) >= limit:
                break
    return list(seen)


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression of quoted terms joined by OR; None when no term is left."""
    return match_expression(query_terms(text))


def match_expression(terms: list[str]) -> str | None:
    """An FTS5 MATCH expression of ``terms`` quoted and joined by OR; None for no term."""
    if not terms:
        return None
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)


def informative(
    words: list[str], stems: dict[str, list[str]], doc_freq: dict[str, int], total: int, min_docs: int
) -> list[str]:
    """The words worth matching: those with a stem in fewer than half of the ``total`` documents.

    BM25's inverse document frequency of a stem in half the documents or more is clamped to ~0 by
    FTS5, so such a word barely moves the ranking, yet FTS5 scores every document holding it: one
    common word makes a query cost O(documents). Only stems in at least ``min_docs`` documents are
    dropped (small stores keep every word), and if no kept word occurs anywhere, all words stay.
    """

    def common(stem: str) -> bool:
        count = doc_freq.get(stem, 0)
        return count >= min_docs and 2 * count >= total

    kept = [word for word in words if not stems.get(word) or not all(common(stem) for stem in stems[word])]
    if not any(doc_freq.get(stem, 0) for word in kept for stem in stems.get(word, [])):
        return words
    return kept
