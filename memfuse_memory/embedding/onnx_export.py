"""The ONNX file of a local model: exported once from its weights, cached, safe for concurrent starts.

The export (``torch.onnx.export``, opset 17, dynamic batch and sequence axes, ``last_hidden_state``
only) runs in a child interpreter, so the process that asks for the file never imports torch. The
file goes to ``<cache_dir>/onnx/<model folder>-<fingerprint>/model.onnx``: the fingerprint changes with
the weights, the model config and the exporter, so a stale export is never reused. An exclusive
file lock serialises exporters; each writes a temporary file and renames it into place, so a
reader sees no file or a whole one.

Pre-export (for example at install): ``python -m memfuse_memory.embedding.onnx_export``.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from memfuse_memory.embedding.models import resolve_model_path
from memfuse_memory.errors import ConfigError

logger = logging.getLogger(__name__)

EXPORTER_VERSION = "torch-onnx-opset17-v1"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

Exporter = Callable[[Path, Path], None]


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/memfuse-memory``, else ``~/.cache/memfuse-memory``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "memfuse-memory"


def fingerprint(model_dir: Path) -> str:
    """A short digest of what the export depends on: exporter, model config, weight file sizes and times."""
    digest = hashlib.sha256(EXPORTER_VERSION.encode())
    config = model_dir / "config.json"
    if config.is_file():
        digest.update(config.read_bytes())
    for name in _WEIGHT_FILES:
        weights = model_dir / name
        if weights.is_file():
            stat = weights.stat()
            digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def onnx_path(model_dir: Path, cache_dir: Path | None = None) -> Path:
    """Where the ONNX file of ``model_dir`` is cached (it may not exist yet)."""
    root = (cache_dir or default_cache_dir()).expanduser()
    label = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{model_dir.parent.name}-{model_dir.name}")
    return root / "onnx" / f"{label}-{fingerprint(model_dir)}" / "model.onnx"


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (blocking); the OS drops it if the process dies."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def ensure_onnx(model_dir: Path, cache_dir: Path | None = None, exporter: Exporter | None = None) -> Path:
    """The cached ONNX file of ``model_dir``, exported first if no process has done it yet."""
    target = onnx_path(model_dir, cache_dir)
    if target.is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the embedding cache directory {target.parent}: {exc}") from exc
    with _exclusive(target.parent / ".lock"):
        if target.is_file():  # another process exported it while this one waited
            return target
        logger.info("exporting %s to ONNX once, into %s", model_dir, target)
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=".model-", suffix=".onnx.tmp")
        os.close(fd)
        temporary = Path(name)
        try:
            (exporter or export_in_child)(model_dir, temporary)
            with temporary.open("rb") as written:
                os.fsync(written.fileno())
            temporary.chmod(0o644)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
    return target


def export_in_child(model_dir: Path, output: Path) -> None:
    """Run :func:`export` in a fresh interpreter, keeping torch out of the calling process."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    command = [
        sys.executable,
        "-m",
        "memfuse_memory.embedding.onnx_export",
        "--model-dir",
        str(model_dir),
        "--output",
        str(output),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ConfigError(f"exporting {model_dir} to ONNX failed: {' '.join(tail) or done.returncode}")


def export(model_dir: Path, output: Path) -> None:
    """Export the transformer of a sentence-transformers folder to ONNX (needs torch and onnx)."""
    import warnings

    import torch
    from transformers import AutoModel

    warnings.filterwarnings("ignore")  # tracer notes about constant shapes: the mask always spans the sequence

    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True, attn_implementation="eager").eval()

    class LastHiddenState(torch.nn.Module):
        """Only the token vectors: pooling and normalisation run in numpy."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = torch.ones((2, 8), dtype=torch.long)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUT_NAMES, "last_hidden_state")}
    with torch.no_grad():
        torch.onnx.export(
            LastHiddenState(),
            (sample, sample, torch.zeros_like(sample)),
            str(output),
            input_names=list(INPUT_NAMES),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )


def main(argv: list[str] | None = None) -> int:
    """Pre-export the configured model into the cache (or, with --output, export one file)."""
    parser = argparse.ArgumentParser(prog="python -m memfuse_memory.embedding.onnx_export", description=main.__doc__)
    parser.add_argument("--model", default="all-MiniLM-L6-v2", help="packaged model name or local folder")
    parser.add_argument("--model-dir", type=Path, help="the model folder (overrides --model)")
    parser.add_argument("--cache-dir", type=Path, help=f"cache root (default {default_cache_dir()})")
    parser.add_argument("--output", type=Path, help="write the ONNX file here, bypassing the cache")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    model_dir = args.model_dir or resolve_model_path(args.model)
    if args.output:
        export(model_dir, args.output)
        return 0
    print(ensure_onnx(model_dir, args.cache_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
