"""One user's keyword index in memory: BM25 over append-only postings, scored with numpy.

A query costs one vectorised pass over the postings of its own terms (a few microseconds per
thousand postings), not a call per matching document, so its cost barely grows with the store;
terms in half the documents or more are skipped (their weight is ~0, their postings the longest).
Scope filters (session, agent, time range, internal sessions) are masks over per-document columns.
Pure and I/O-free: :mod:`memfuse_memory.storage.keyword_index` feeds it from the message store.
"""

from __future__ import annotations

import io
import math
import zipfile
from array import array
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from memfuse_memory.ranking.terms import TF_MAX, document_terms
from memfuse_memory.scope import ScopeFilter, is_internal

K1, B = 1.2, 0.75  # BM25's usual constants (FTS5's too)
MIN_IDF = 1e-6  # a term in half the documents or more: FTS5 clamps its weight to this
TF_BITS = 16  # a posting is one 64-bit word: the document number, then the term's count (see TF_MAX)
SNAPSHOT_FORMAT = 1  # the layout of to_bytes; a snapshot of another layout is not loaded
COMMON_MIN_DOCS = 500  # from this many messages on, terms in half of them or more are not scored


@dataclass(frozen=True, slots=True)
class IndexedMessage:
    """What the index needs of a stored message."""

    seq: int
    id: str
    session_id: str
    agent_id: str | None
    created_us: int
    content: str


class _Column:
    """A growable numpy column (amortised O(1) append; ``view`` is the filled part)."""

    def __init__(self, dtype: type[np.generic]) -> None:
        self._data = np.zeros(64, dtype=dtype)
        self.size = 0

    def append(self, value: int) -> None:
        if self.size == len(self._data):
            self._data = np.concatenate([self._data, np.zeros_like(self._data)])
        self._data[self.size] = value
        self.size += 1

    @property
    def view(self) -> np.ndarray:
        return self._data[: self.size]

    @classmethod
    def of(cls, values: np.ndarray) -> _Column:
        column = cls(values.dtype.type)
        column._data, column.size = values.copy(), len(values)
        return column


def _pack_strings(values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Strings as one UTF-8 byte array and the end offset of each."""
    encoded = [value.encode("utf-8") for value in values]
    lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), np.cumsum(lengths)


def _unpack_strings(data: np.ndarray, ends: np.ndarray) -> list[str]:
    raw = data.tobytes()
    starts = [0, *ends[:-1].tolist()]
    return [raw[a:b].decode("utf-8") for a, b in zip(starts, ends.tolist(), strict=True)]


class Bm25Index:
    """BM25 (k1 1.2, b 0.75, FTS5's inverse document frequency) over one user's messages, in
    ``seq`` order. Append-only: a deleted or edited message means building the index again."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.last_seq = -1
        self._postings: dict[str, array[int]] = {}  # term -> postings: doc number << TF_BITS | count
        self._length = _Column(np.float32)
        self._created = _Column(np.int64)
        self._session = _Column(np.int32)
        self._agent = _Column(np.int32)
        self._internal = _Column(np.bool_)
        self._codes: dict[str | None, int] = {None: 0}
        self._total_length = 0
        self.posting_count = 0

    def __len__(self) -> int:
        return len(self.ids)

    def to_bytes(self) -> bytes:
        """The whole index as one byte string (numpy's ``.npz``, no pickles), for a snapshot."""
        terms = list(self._postings)
        term_data, term_ends = _pack_strings(terms)
        id_data, id_ends = _pack_strings(self.ids)
        names = [name for name in self._codes if name is not None]
        name_data, name_ends = _pack_strings(names)
        postings = np.frombuffer(b"".join(self._postings[t].tobytes() for t in terms), dtype=np.uint64)
        sizes = np.fromiter((len(self._postings[t]) for t in terms), dtype=np.int64, count=len(terms))
        out = io.BytesIO()
        np.savez(
            out,
            meta=np.array([SNAPSHOT_FORMAT, self.last_seq, self._total_length], dtype=np.int64),
            term_data=term_data,
            term_ends=term_ends,
            id_data=id_data,
            id_ends=id_ends,
            name_data=name_data,
            name_ends=name_ends,
            name_codes=np.array([self._codes[name] for name in names], dtype=np.int64),
            postings=postings,
            posting_ends=np.cumsum(sizes),
            length=self._length.view,
            created=self._created.view,
            session=self._session.view,
            agent=self._agent.view,
            internal=self._internal.view,
        )
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Bm25Index:
        """An index from :meth:`to_bytes`; ValueError when ``data`` is not one."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as parts:
                arrays = {name: parts[name] for name in parts.files}
            if int(arrays["meta"][0]) != SNAPSHOT_FORMAT:
                raise ValueError(f"snapshot format {int(arrays['meta'][0])}, expected {SNAPSHOT_FORMAT}")
            index = cls()
            index.last_seq, index._total_length = int(arrays["meta"][1]), int(arrays["meta"][2])
            index.ids = _unpack_strings(arrays["id_data"], arrays["id_ends"])
            names = _unpack_strings(arrays["name_data"], arrays["name_ends"])
            index._codes.update(zip(names, arrays["name_codes"].tolist(), strict=True))
            raw, ends = arrays["postings"].tobytes(), arrays["posting_ends"].tolist()
            for term, start, end in zip(
                _unpack_strings(arrays["term_data"], arrays["term_ends"]), [0, *ends[:-1]], ends, strict=True
            ):
                index._postings[term] = array("Q", raw[start * 8 : end * 8])
            index.posting_count = len(arrays["postings"])
            for name in ("length", "created", "session", "agent", "internal"):
                setattr(index, f"_{name}", _Column.of(arrays[name]))
        except (OSError, ValueError, KeyError, IndexError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
            raise ValueError(f"not a keyword index snapshot: {exc}") from exc
        if not len(index.ids) == index._length.size == index._session.size:
            raise ValueError("not a keyword index snapshot: its columns differ in length")
        return index

    def _code(self, name: str | None) -> int:
        return self._codes.setdefault(name, len(self._codes))

    def add(self, message: IndexedMessage) -> None:
        """Index one message; messages come in ``seq`` order, each once."""
        self.add_many([message])

    def add_many(self, messages: list[IndexedMessage]) -> None:
        """Index messages in ``seq`` order, each once (one tight loop: a build indexes thousands)."""
        postings = self._postings
        for message in messages:
            if message.seq <= self.last_seq:
                raise ValueError(f"message seq {message.seq} is not after {self.last_seq}")
            counts, length = document_terms(message.content)
            doc = len(self.ids) << TF_BITS
            for term, count in counts.items():
                entry = postings.get(term)
                if entry is None:
                    entry = postings[term] = array("Q")
                entry.append(doc | count)
            self.posting_count += len(counts)
            self.ids.append(message.id)
            self.last_seq = message.seq
            self._length.append(length)
            self._total_length += length
            self._created.append(message.created_us)
            self._session.append(self._code(message.session_id))
            self._agent.append(self._code(message.agent_id))
            self._internal.append(is_internal(message.session_id))

    def document_frequency(self, term: str) -> int:
        entry = self._postings.get(term)
        return 0 if entry is None else len(entry)

    def top(
        self, stems: list[str], scope: ScopeFilter, limit: int, weights: Mapping[str, float] | None = None
    ) -> dict[str, float]:
        """The ``limit`` best messages in ``scope`` for any of ``stems``: id -> BM25 score, best
        first (ties: the newer first); ``weights`` scales a term's part of the score (default 1).
        Once the index holds :data:`COMMON_MIN_DOCS` messages, terms
        in half of them or more are left out (unless all are): their weight is ~0 and their
        postings the longest. Below that every matching message is returned."""
        total = len(self.ids)
        found = [(term, self.document_frequency(term)) for term in dict.fromkeys(stems)]
        found = [(term, df) for term, df in found if df]
        if not found or limit <= 0:
            return {}
        informative = [(term, df) for term, df in found if 2 * df < total or total < COMMON_MIN_DOCS]
        chosen = informative or found
        lengths = self._length.view
        norm = K1 * (1 - B + B * lengths / (self._total_length / total))
        docs_parts, score_parts = [], []
        for term, df in chosen:
            idf = max(math.log((total - df + 0.5) / (df + 0.5)), MIN_IDF)
            if weights is not None:
                idf *= weights.get(term, 1.0)
            packed = np.frombuffer(self._postings[term], dtype=np.uint64).copy()
            docs = (packed >> TF_BITS).astype(np.int64)
            tf = (packed & TF_MAX).astype(np.float32)
            docs_parts.append(docs)
            score_parts.append(idf * tf * (K1 + 1) / (tf + norm[docs]))
        docs = np.concatenate(docs_parts)
        scores = np.bincount(docs, weights=np.concatenate(score_parts), minlength=total)
        scores[~self._mask(scope)] = 0.0
        hits = np.flatnonzero(scores > 0)
        if len(hits) > limit:  # the best ``limit``; of those tied at the cut, the newest
            best = scores[hits]
            cut = np.partition(best, len(best) - limit)[len(best) - limit]
            above, tied = hits[best > cut], hits[best == cut]
            hits = np.concatenate([above, tied[::-1][: limit - len(above)]])
        # best first; among equal scores the newer message (the later document) first
        hits = hits[np.lexsort((-hits, -scores[hits]))]
        return {self.ids[doc]: float(scores[doc]) for doc in hits}

    def _mask(self, scope: ScopeFilter) -> np.ndarray:
        """Which documents ``scope`` may see (the user is the index's own)."""
        mask = np.ones(len(self.ids), dtype=bool)
        if scope.session_id is not None:
            mask &= self._session.view == self._codes.get(scope.session_id, -1)
        if scope.agent_id is not None:
            mask &= self._agent.view == self._codes.get(scope.agent_id, -1)
        if scope.since is not None:
            mask &= self._created.view >= scope.since
        if scope.until is not None:
            mask &= self._created.view <= scope.until
        if scope.excludes_internal:
            mask &= ~self._internal.view
        return mask
