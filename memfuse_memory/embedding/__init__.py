"""Embedders: the small protocol the engine needs and its two runtimes (ONNX Runtime, PyTorch).

``load_embedder(config)`` is the one entry point; importing this package imports neither runtime.
"""

from memfuse_memory.embedding.base import Embedder
from memfuse_memory.embedding.loader import load_embedder

__all__ = ["Embedder", "load_embedder"]
