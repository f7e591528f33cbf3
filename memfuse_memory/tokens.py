"""Token counting with tiktoken, offline: the BPE files shipped in llama-index-core are used.

Building an encoding (o200k_base: 200k base64 lines, then the Rust BPE tables) costs 0.3-1 s, so a
:class:`TokenCounter` checks its model name at once but loads the encoding on its first count: a
process that only queries (a CLI ``query``) never pays for it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from functools import lru_cache
from importlib import util as import_util
from pathlib import Path

import tiktoken
import tiktoken.model

from memfuse_memory.errors import ConfigError

# OpenAI's chat format spends a few tokens per message on role and separators.
_PER_MESSAGE_OVERHEAD = 3
# The encodings whose BPE files llama-index-core ships (used unless TIKTOKEN_CACHE_DIR is set).
_SHIPPED = {"o200k_base", "cl100k_base"}
_HINT = "use gpt-4o-mini, gpt-4, o200k_base or cl100k_base"


def _point_tiktoken_at_shipped_files() -> None:
    if os.environ.get("TIKTOKEN_CACHE_DIR"):
        return
    spec = import_util.find_spec("llama_index.core")
    if spec is None or not spec.submodule_search_locations:
        return
    cache = Path(next(iter(spec.submodule_search_locations))) / "_static" / "tiktoken_cache"
    if cache.is_dir():
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)


def encoding_name(model: str) -> str:
    """The encoding a model (or encoding) name stands for, checked without loading it."""
    try:
        name = tiktoken.model.encoding_name_for_model(model)
    except KeyError:
        name = model
    if name not in tiktoken.list_encoding_names():
        raise ConfigError(f"unknown token_model {model!r}; {_HINT}")
    if name not in _SHIPPED and not os.environ.get("TIKTOKEN_CACHE_DIR"):
        raise ConfigError(f"no offline tiktoken encoding for token_model {model!r} ({name}); {_HINT}")
    return name


@lru_cache(maxsize=8)
def get_encoding(model: str) -> tiktoken.Encoding:
    """The tiktoken encoding of a model name (or an encoding name), loaded without network."""
    _point_tiktoken_at_shipped_files()
    try:
        return tiktoken.get_encoding(encoding_name(model))
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"no offline tiktoken encoding for token_model {model!r}: {exc}; {_HINT}") from exc


class TokenCounter:
    """Counts chat-message tokens the way OpenAI's chat format spends them; thread-safe."""

    def __init__(self, model: str) -> None:
        encoding_name(model)
        self.model = model
        self._encoding: tiktoken.Encoding | None = None
        self._lock = threading.Lock()

    @property
    def encoding(self) -> tiktoken.Encoding:
        """The encoding, loaded on first use (once, whichever thread asks first)."""
        encoding = self._encoding
        if encoding is None:
            with self._lock:
                if self._encoding is None:
                    self._encoding = get_encoding(self.model)
                encoding = self._encoding
        return encoding

    def count_text(self, text: str) -> int:
        """Tokens of plain text (special-token strings are counted as ordinary text)."""
        return len(self.encoding.encode_ordinary(text))

    def count_messages(self, contents: Iterable[str]) -> int:
        """Tokens of a list of message contents, with the per-message overhead."""
        return sum(self.count_text(text) + _PER_MESSAGE_OVERHEAD for text in contents)
