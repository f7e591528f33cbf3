"""Embedders: the small protocol the engine needs, and the offline all-MiniLM-L6-v2."""

from memfuse_memory.embedding.base import Embedder
from memfuse_memory.embedding.sentence_transformer import SentenceTransformerEmbedder, load_embedder

__all__ = ["Embedder", "SentenceTransformerEmbedder", "load_embedder"]
