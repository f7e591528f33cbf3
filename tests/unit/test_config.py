"""Config: the YAML equals the code defaults, bad keys and values are named, every key is read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from memfuse_memory.config import DEFAULT_CONFIG_PATH, MemFuseConfig, load_config
from memfuse_memory.errors import ConfigError

PACKAGE = Path(__file__).resolve().parents[2] / "memfuse_memory"


def test_default_yaml_equals_code_defaults() -> None:
    assert load_config(DEFAULT_CONFIG_PATH) == MemFuseConfig()


def test_default_yaml_lists_every_key() -> None:
    def keys(model: type[BaseModel], prefix: str = "") -> set[str]:
        found: set[str] = set()
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                found |= keys(annotation, f"{prefix}{name}.")
            else:
                found.add(prefix + name)
        return found

    def yaml_keys(node: dict, prefix: str = "") -> set[str]:
        found: set[str] = set()
        for name, value in node.items():
            if isinstance(value, dict):
                found |= yaml_keys(value, f"{prefix}{name}.")
            else:
                found.add(prefix + name)
        return found

    assert yaml_keys(yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())) == keys(MemFuseConfig)


def test_seed_defaults_hold() -> None:
    config = MemFuseConfig()
    assert (config.buffer.round_buffer.max_tokens, config.buffer.round_buffer.max_size) == (800, 5)
    assert config.buffer.round_buffer.token_model == "gpt-4o-mini"
    assert config.buffer.hybrid_buffer.max_size == 5
    assert config.buffer.hybrid_buffer.chunk_strategy == "user"
    assert config.buffer.hybrid_buffer.embedding_model == "all-MiniLM-L6-v2"
    assert (config.buffer.query.max_size, config.buffer.query.cache_size) == (15, 100)
    assert (config.buffer.query.default_sort_by, config.buffer.query.default_order) == ("score", "desc")


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("buffer:\n  round_buffer:\n    max_tokenz: 10\n")
    with pytest.raises(ConfigError, match=r"buffer\.round_buffer\.max_tokenz"):
        load_config(path)


def test_bad_value_is_named() -> None:
    with pytest.raises(ConfigError, match=r"buffer\.hybrid_buffer\.chunk_strategy"):
        load_config({"buffer": {"hybrid_buffer": {"chunk_strategy": "sentences"}}})
    with pytest.raises(ConfigError, match=r"buffer\.query\.max_size"):
        load_config(buffer__query__max_size=0)


def test_unreadable_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("buffer: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_overrides_and_data_dir_merge(tmp_path: Path) -> None:
    config = load_config(
        DEFAULT_CONFIG_PATH, data_dir=tmp_path, buffer={"query": {"max_size": 3}}, retry__max_attempts=7
    )
    assert config.buffer.query.max_size == 3
    assert config.buffer.query.cache_size == 100
    assert config.retry.max_attempts == 7
    assert config.storage.data_dir == tmp_path


def test_every_leaf_key_is_read_by_the_code() -> None:
    """A key nobody reads is a lie in the config reference: each leaf must be accessed as an attribute."""
    source = "\n".join(path.read_text() for path in PACKAGE.rglob("*.py") if path.name != "config.py")

    def leaves(model: type[BaseModel]) -> set[str]:
        found: set[str] = set()
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                found |= leaves(annotation)
            else:
                found.add(name)
        return found

    unread = {name for name in leaves(MemFuseConfig) if not re.search(rf"\.{name}\b", source)}
    assert unread == set()


def test_the_packaged_default_config_is_the_source_tree_one() -> None:
    root = Path(__file__).resolve().parents[2] / "config" / "buffer" / "default.yaml"
    assert DEFAULT_CONFIG_PATH.read_bytes() == root.read_bytes(), (
        "config/buffer/default.yaml must be a link to the packaged memfuse_memory/data/default.yaml"
    )
