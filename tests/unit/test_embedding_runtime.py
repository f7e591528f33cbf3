"""The ONNX export cache (paths, locking, atomic writes) and the runtime choice, without a real model."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from memfuse_memory.config import load_config
from memfuse_memory.embedding import loader, onnx_export
from memfuse_memory.errors import ConfigError
from tests.fakes import FakeEmbedder

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "models" / "tiny-model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (folder / "model.safetensors").write_bytes(b"weights")
    return folder


def _exporter(calls: list[Path]) -> onnx_export.Exporter:
    def export(model: Path, output: Path) -> None:
        calls.append(output)
        output.write_bytes(b"onnx graph of " + model.name.encode())

    return export


def test_default_cache_dir_follows_xdg_cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert onnx_export.default_cache_dir() == tmp_path / "xdg" / "memfuse-memory"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert onnx_export.default_cache_dir() == Path.home() / ".cache" / "memfuse-memory"


def test_onnx_path_lives_under_the_cache_dir_and_changes_with_the_weights(model_dir: Path, tmp_path: Path) -> None:
    first = onnx_export.onnx_path(model_dir, tmp_path / "cache")
    assert first.name == "model.onnx"
    assert first.is_relative_to(tmp_path / "cache" / "onnx")
    assert "tiny-model" in first.parent.name
    assert onnx_export.onnx_path(model_dir, tmp_path / "cache") == first
    (model_dir / "model.safetensors").write_bytes(b"other weights")
    assert onnx_export.onnx_path(model_dir, tmp_path / "cache") != first


def test_ensure_onnx_exports_once_then_reuses_the_file(model_dir: Path, tmp_path: Path) -> None:
    calls: list[Path] = []
    path = onnx_export.ensure_onnx(model_dir, tmp_path / "cache", _exporter(calls))
    again = onnx_export.ensure_onnx(model_dir, tmp_path / "cache", _exporter(calls))
    assert path == again
    assert len(calls) == 1
    assert path.read_bytes() == b"onnx graph of tiny-model"
    assert sorted(p.name for p in path.parent.iterdir()) == [".lock", "model.onnx"]


def test_a_failed_export_leaves_no_file_behind(model_dir: Path, tmp_path: Path) -> None:
    def broken(model: Path, output: Path) -> None:
        output.write_bytes(b"half a gra")
        raise RuntimeError("exporter crashed")

    with pytest.raises(RuntimeError, match="exporter crashed"):
        onnx_export.ensure_onnx(model_dir, tmp_path / "cache", broken)
    target = onnx_export.onnx_path(model_dir, tmp_path / "cache")
    assert not target.exists()
    assert [p.name for p in target.parent.iterdir()] == [".lock"]


def test_an_unwritable_cache_dir_is_a_config_error(model_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="cache directory"):
        onnx_export.ensure_onnx(model_dir, blocker, _exporter([]))


_RACER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from memfuse_memory.embedding import onnx_export

    model, cache, log = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    start = float(sys.argv[4])
    while time.time() < start:
        time.sleep(0.005)

    def slow_export(model_dir, output):
        with log.open("a") as f:
            f.write("export\\n")
        with output.open("wb") as f:
            for _ in range(20):
                f.write(b"x" * 1000)
                f.flush()
                time.sleep(0.02)

    print(onnx_export.ensure_onnx(model, cache, slow_export))
    """
)


def test_two_processes_starting_at_once_export_once_and_see_a_whole_file(model_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "exports.log"
    start = str(time.time() + 1.0)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    args = [str(model_dir), str(tmp_path / "cache"), str(log), start]
    racers = [
        subprocess.Popen([sys.executable, "-c", _RACER, *args], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    outputs = [racer.communicate(timeout=60)[0].strip() for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0]
    assert outputs[0] == outputs[1]
    assert log.read_text().count("export") == 1
    assert Path(outputs[0]).read_bytes() == b"x" * 20_000


def test_backend_must_be_onnx_or_torch() -> None:
    assert load_config().embedding.backend == "onnx"
    assert load_config().embedding.cache_dir is None
    with pytest.raises(ConfigError, match=r"embedding\.backend"):
        load_config(embedding__backend="cuda")
    with pytest.raises(ConfigError, match=r"embedding\.intra_op_threads"):
        load_config(embedding__intra_op_threads=-1)


def test_onnx_that_cannot_load_falls_back_to_torch_with_a_warning(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeEmbedder()
    monkeypatch.setattr(loader, "load_torch_embedder", lambda path, batch_size: fake)

    def no_export(model: Path, cache: Path | None = None) -> Path:
        raise ConfigError("exporting to ONNX failed: no onnx package")

    monkeypatch.setattr(onnx_export, "ensure_onnx", no_export)
    config = load_config(buffer__hybrid_buffer__embedding_model=str(model_dir), embedding__cache_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="memfuse_memory.embedding.loader"):
        assert loader.load_embedder(config) is fake
    assert "falling back to PyTorch" in caplog.text
    assert "no onnx package" in caplog.text


def test_explicit_torch_never_touches_onnx(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeEmbedder()
    monkeypatch.setattr(loader, "load_torch_embedder", lambda path, batch_size: fake)

    def forbidden(*args: object, **kwargs: object) -> Path:
        raise AssertionError("the torch backend must not export or load ONNX")

    monkeypatch.setattr(onnx_export, "ensure_onnx", forbidden)
    monkeypatch.setattr(onnx_export, "onnx_path", forbidden)
    config = load_config(buffer__hybrid_buffer__embedding_model=str(model_dir), embedding__backend="torch")
    assert loader.load_embedder(config) is fake


def test_without_onnxruntime_nothing_is_exported_and_torch_serves(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from memfuse_memory.embedding import onnx_runtime

    fake = FakeEmbedder()
    monkeypatch.setattr(loader, "load_torch_embedder", lambda path, batch_size: fake)

    def missing() -> None:
        raise ConfigError("the ONNX embedding runtime needs onnxruntime and tokenizers: No module named 'onnxruntime'")

    def forbidden(*args: object, **kwargs: object) -> Path:
        raise AssertionError("no export without a runtime to run it")

    monkeypatch.setattr(onnx_runtime, "require_runtime", missing)
    monkeypatch.setattr(onnx_export, "ensure_onnx", forbidden)
    config = load_config(buffer__hybrid_buffer__embedding_model=str(model_dir), embedding__cache_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="memfuse_memory.embedding.loader"):
        assert loader.load_embedder(config) is fake
    assert "No module named 'onnxruntime'" in caplog.text
