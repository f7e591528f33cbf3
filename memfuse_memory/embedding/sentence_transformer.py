"""The PyTorch runtime: a local sentence-transformers folder loaded offline, once per process.

Importing this module is cheap; torch is imported when the first model loads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from memfuse_memory.errors import ConfigError, EmbeddingError

_cache: dict[str, SentenceTransformerEmbedder] = {}
_cache_lock = threading.Lock()


class SentenceTransformerEmbedder:
    """A sentence-transformers model on the CPU producing normalised vectors."""

    def __init__(self, path: Path, batch_size: int = 32) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from sentence_transformers import SentenceTransformer

        try:
            self._model = SentenceTransformer(str(path), device="cpu")
        except Exception as exc:
            raise ConfigError(f"cannot load embedding model from {path}: {exc}") from exc
        self.path = path
        self.batch_size = batch_size
        getter = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dimension = getter()
        if not dimension:
            raise ConfigError(f"model at {path} does not report its embedding dimension")
        self._dimension = int(dimension)

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; any model failure becomes an EmbeddingError (never a fake vector)."""
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        try:
            vectors = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        except Exception as exc:
            raise EmbeddingError(f"embedding {len(texts)} text(s) failed: {exc}") from exc
        return np.asarray(vectors, dtype=np.float32)


def load_torch_embedder(path: Path, batch_size: int = 32) -> SentenceTransformerEmbedder:
    """The process-wide PyTorch embedder of a model folder, loaded on first use."""
    key = f"{path.resolve()}|{batch_size}"
    with _cache_lock:
        embedder = _cache.get(key)
        if embedder is None:
            embedder = _cache[key] = SentenceTransformerEmbedder(path, batch_size)
        return embedder
