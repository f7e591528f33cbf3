"""An embedder that remembers vectors on disk, keyed by model and text, so reruns are fast."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from memfuse_memory.embedding.base import Embedder


class CachedEmbedder:
    """Wraps an embedder; vectors already computed for the same model and text come from SQLite."""

    def __init__(self, inner: Embedder, path: Path, model_key: str) -> None:
        self._inner = inner
        self._model_key = model_key
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # a cache: a lost write costs one recomputation, so no fsync on the timed path (cold queries miss it)
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self._model_key}\x00{text}".encode()).hexdigest()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        keys = [self._key(text) for text in texts]
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                part = keys[start : start + 500]
                marks = ",".join("?" * len(part))
                for key, blob in self._db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", part):
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        missing = [i for i, key in enumerate(keys) if key not in found]
        if missing:
            fresh = self._inner.embed([texts[i] for i in missing])
            with self._lock:
                self._db.execute("BEGIN")
                for i, vector in zip(missing, fresh, strict=True):
                    found[keys[i]] = vector
                    self._db.execute("INSERT OR REPLACE INTO vectors VALUES (?, ?)", (keys[i], vector.tobytes()))
                self._db.execute("COMMIT")
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        return np.stack([found[key] for key in keys]) if keys else np.zeros((0, self.dimension), dtype=np.float32)
