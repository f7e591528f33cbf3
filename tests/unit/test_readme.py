"""The README's configuration reference is generated from the models and must not drift."""

from __future__ import annotations

from pathlib import Path

from memfuse_memory.config import config_reference_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_config_reference_matches_the_models() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- config-reference:start -->") + len("<!-- config-reference:start -->")
    end = text.index("<!-- config-reference:end -->")
    assert text[start:end].strip() == config_reference_markdown()
