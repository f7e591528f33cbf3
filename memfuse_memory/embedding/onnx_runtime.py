"""A sentence-transformers model run by ONNX Runtime: Rust tokenizer, ONNX graph, numpy pooling.

No torch in this path: ``tokenizers`` reads the model's ``tokenizer.json``, ONNX Runtime runs the
exported transformer, and mean (or CLS) pooling plus L2 normalisation happen in numpy, as
sentence-transformers does them, so the vectors match the PyTorch runtime's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from memfuse_memory.embedding.models import max_seq_length, pooling_mode
from memfuse_memory.errors import ConfigError, EmbeddingError


def default_threads() -> int:
    """Intra-op threads when the config says 0: the cores this process may use, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


def require_runtime() -> None:
    """Raise ConfigError unless onnxruntime and tokenizers import (checked before any export)."""
    try:
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"the ONNX embedding runtime needs onnxruntime and tokenizers: {exc}") from exc


class OnnxEmbedder:
    """Embeds with an exported ONNX graph; ``run`` is thread-safe, so threads may share one instance."""

    def __init__(self, onnx_file: Path, model_dir: Path, batch_size: int = 32, threads: int = 0) -> None:
        require_runtime()
        import onnxruntime as ort
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except Exception as exc:
            raise ConfigError(f"cannot read the tokenizer of {model_dir}: {exc}") from exc
        # tokenizer.json may carry fixed padding and a shorter truncation; use the model's own limit
        # and pad each batch only to its longest text.
        padding = tokenizer.padding or {}
        tokenizer.enable_truncation(max_length=max_seq_length(model_dir))
        tokenizer.enable_padding(pad_id=padding.get("pad_id", 0), pad_token=padding.get("pad_token", "[PAD]"))
        self._tokenizer = tokenizer
        self._pooling = pooling_mode(model_dir)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle intra-op threads sleep instead of spinning: on a few shared cores, spinning steals
        # the CPU from the add path and other processes for little latency gain.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ConfigError(f"ONNX Runtime cannot load {onnx_file}: {exc}") from exc
        self._inputs = [node.name for node in self._session.get_inputs()]
        width = self._session.get_outputs()[0].shape[-1]
        if not isinstance(width, int):
            raise ConfigError(f"{onnx_file} does not declare its embedding dimension")
        self._dimension = width
        self.onnx_file = onnx_file
        self.path = model_dir
        self.batch_size = batch_size
        self.threads = options.intra_op_num_threads

    @property
    def dimension(self) -> int:
        return self._dimension

    def _batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, {name: feeds[name] for name in self._inputs})[0]
        if self._pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` (longest first in batches, as sentence-transformers does); failures raise EmbeddingError."""
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        if not texts:
            return out
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        try:
            for start in range(0, len(order), self.batch_size):
                chosen = order[start : start + self.batch_size]
                out[chosen] = self._batch([texts[i] for i in chosen])
        except Exception as exc:
            raise EmbeddingError(f"embedding {len(texts)} text(s) failed: {exc}") from exc
        return out
