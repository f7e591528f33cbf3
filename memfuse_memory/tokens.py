"""Token counting with tiktoken, offline: the BPE files shipped in llama-index-core are used."""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache
from importlib import util as import_util
from pathlib import Path

import tiktoken

from memfuse_memory.errors import ConfigError

# OpenAI's chat format spends a few tokens per message on role and separators.
_PER_MESSAGE_OVERHEAD = 3


def _point_tiktoken_at_shipped_files() -> None:
    if os.environ.get("TIKTOKEN_CACHE_DIR"):
        return
    spec = import_util.find_spec("llama_index.core")
    if spec is None or not spec.submodule_search_locations:
        return
    cache = Path(next(iter(spec.submodule_search_locations))) / "_static" / "tiktoken_cache"
    if cache.is_dir():
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)


@lru_cache(maxsize=8)
def get_encoding(model: str) -> tiktoken.Encoding:
    """The tiktoken encoding of a model name (or an encoding name), loaded without network."""
    _point_tiktoken_at_shipped_files()
    try:
        try:
            return tiktoken.encoding_for_model(model)
        except KeyError:
            return tiktoken.get_encoding(model)
    except Exception as exc:
        raise ConfigError(
            f"no offline tiktoken encoding for token_model {model!r}: {exc}; "
            "use gpt-4o-mini, gpt-4, o200k_base or cl100k_base"
        ) from exc


class TokenCounter:
    """Counts chat-message tokens the way OpenAI's chat format spends them."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._encoding = get_encoding(model)

    def count_text(self, text: str) -> int:
        """Tokens of plain text (special-token strings are counted as ordinary text)."""
        return len(self._encoding.encode_ordinary(text))

    def count_messages(self, contents: Iterable[str]) -> int:
        """Tokens of a list of message contents, with the per-message overhead."""
        return sum(self.count_text(text) + _PER_MESSAGE_OVERHEAD for text in contents)
