"""Token counting: names are checked at once, the encoding loads on the first count."""

from __future__ import annotations

import pytest

from memfuse_memory.errors import ConfigError
from memfuse_memory.tokens import TokenCounter, encoding_name, get_encoding


def test_model_and_encoding_names_map_to_a_shipped_encoding() -> None:
    assert encoding_name("gpt-4o-mini") == "o200k_base"
    assert encoding_name("gpt-4") == "cl100k_base"
    assert encoding_name("cl100k_base") == "cl100k_base"


@pytest.mark.parametrize(("model", "message"), [("llama-3-70b", "unknown"), ("gpt2", "no offline")])
def test_a_bad_token_model_fails_when_the_counter_is_made(
    model: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    with pytest.raises(ConfigError, match=message):
        TokenCounter(model)


def test_the_encoding_loads_on_the_first_count_and_counts_like_tiktoken() -> None:
    counter = TokenCounter("gpt-4o-mini")
    assert counter._encoding is None
    text = "I adopted a kitten and named her Miso."
    assert counter.count_text(text) == len(get_encoding("gpt-4o-mini").encode_ordinary(text))
    assert counter.count_messages([text, ""]) == counter.count_text(text) + 6
    assert counter._encoding is get_encoding("gpt-4o-mini")
