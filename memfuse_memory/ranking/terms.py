"""Text to index terms: Unicode words, lower-cased, diacritics removed, Porter-stemmed.

The same function feeds documents and queries, so a query word and the word it was said as always
meet. It follows SQLite FTS5's ``porter unicode61 remove_diacritics 2`` tokenizer (letters and
digits are word characters; words shorter than 3 characters are not stemmed), with the Porter
stemmer in C (PyStemmer). Stop words are not indexed: a query never asks for them.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter

import Stemmer

from memfuse_memory.ranking.keywords import FRAME_WORDS, STOP_WORDS, query_terms

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# the usual separators, turned into spaces so that ``split`` does the work of ``_WORD`` (3x faster)
_SEPARATORS = str.maketrans(
    dict.fromkeys(string.punctuation + "\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u00b7\u2022", " ")
)
_STEMMER = Stemmer.Stemmer("porter")
_STEMS: dict[str, str] = {}
STEM_CACHE = 200_000  # distinct words whose stem is kept (cleared when full)
TF_MAX = 0xFFFF  # a term's count in one document is capped here (it fits a posting's 16 bits)
MIN_STEMMED, MAX_STEMMED = 3, 64  # as FTS5's porter: shorter and longer words stay as they are


def _plain(word: str) -> str:
    """``word`` without diacritics ("élan" -> "elan")."""
    if word.isascii():
        return word
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def stem(word: str) -> str:
    """The index term of one lower-cased word."""
    found = _STEMS.get(word)
    if found is None:
        plain = _plain(word)
        found = _STEMMER.stemWord(plain) if MIN_STEMMED <= len(plain) <= MAX_STEMMED else plain
        if len(_STEMS) >= STEM_CACHE:
            _STEMS.clear()
        _STEMS[word] = found
    return found


_FRAME_TERMS = frozenset(stem(word) for word in FRAME_WORDS)


def words(text: str) -> list[str]:
    """The lower-cased words of ``text``: runs of letters and digits."""
    lowered = text.lower()
    found = lowered.translate(_SEPARATORS).split()
    return found if all(map(str.isalnum, found)) else _WORD.findall(lowered)


def document_terms(text: str) -> tuple[dict[str, int], int]:
    """A document's term frequencies (stop words left out; at most :data:`TF_MAX`) and its length
    in words (all words)."""
    words_ = words(text)
    counts: dict[str, int] = {}
    for word, count in Counter(words_).items():  # each distinct word once: Counter counts in C
        if word not in STOP_WORDS:
            term = _STEMS.get(word) or stem(word)
            counts[term] = counts.get(term, 0) + count
    if len(words_) > TF_MAX:
        counts = {term: min(count, TF_MAX) for term, count in counts.items()}
    return counts, len(words_)


def query_stems(text: str) -> list[str]:
    """The distinct index terms a query asks for, in the order its words first occur."""
    return list(dict.fromkeys(stem(word) for word in query_terms(text)))


def query_weights(text: str, frame_weight: float = 1.0) -> dict[str, float]:
    """The index terms a query asks for, each with its weight: ``frame_weight`` for the terms of the
    words of how the question is put (:data:`FRAME_WORDS`, any form: "wondered" as "wondering"), 1 for
    the others."""
    return {term: frame_weight if term in _FRAME_TERMS else 1.0 for term in query_stems(text)}
