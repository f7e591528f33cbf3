"""The one entry point to an embedder: the configured runtime, loaded once per process.

``embedding.backend: onnx`` (the default) runs the model on ONNX Runtime and never imports torch;
if that runtime cannot load (no onnxruntime, the export failed, ...) the PyTorch runtime is used
and a warning says why. ``embedding.backend: torch`` never touches ONNX.
"""

from __future__ import annotations

import logging
import threading

from memfuse_memory.config import MemFuseConfig
from memfuse_memory.embedding.base import Embedder
from memfuse_memory.embedding.models import resolve_model_path
from memfuse_memory.embedding.sentence_transformer import load_torch_embedder

logger = logging.getLogger(__name__)

_onnx_cache: dict[tuple[str, str, int, int], Embedder] = {}
_onnx_lock = threading.Lock()


def load_embedder(config: MemFuseConfig | None = None) -> Embedder:
    """The process-wide embedder of ``config`` (the defaults when None)."""
    config = config or MemFuseConfig()
    settings = config.embedding
    path = resolve_model_path(config.buffer.hybrid_buffer.embedding_model)
    if settings.backend == "torch":
        return load_torch_embedder(path, settings.batch_size)
    from memfuse_memory.embedding.onnx_export import ensure_onnx, onnx_path
    from memfuse_memory.embedding.onnx_runtime import OnnxEmbedder, require_runtime

    try:
        require_runtime()
        onnx_file = onnx_path(path, settings.cache_dir)
        key = (str(onnx_file), str(path.resolve()), settings.batch_size, settings.intra_op_threads)
        with _onnx_lock:
            embedder = _onnx_cache.get(key)
            if embedder is None:
                onnx_file = ensure_onnx(path, settings.cache_dir)
                embedder = OnnxEmbedder(onnx_file, path, settings.batch_size, settings.intra_op_threads)
                _onnx_cache[key] = embedder
            return embedder
    except Exception as exc:  # any reason ONNX cannot serve: the PyTorch runtime still can
        logger.warning("ONNX embedding runtime unavailable (%s); falling back to PyTorch (embedding.backend)", exc)
        return load_torch_embedder(path, settings.batch_size)
