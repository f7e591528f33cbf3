"""Every Python block of the README runs, in order, in one fresh folder, and prints what the
README shows (the ``text`` block right after it, when there is one; dates and scores masked).

Blocks run in one interpreter with one namespace, as a reader pasting them into one session
would (a later block may use a name an earlier one defined). A block preceded by
``<!-- readme-test: skip REASON -->`` needs something the tests do not have (a hosted model, a
running server) and is left out, with its reason in the README.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from memfuse_memory.shared import close_shared_engines

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"(<!-- readme-test: skip[^>]*-->\s*)?```python\n(.*?)```(\s*```text\n(.*?)```)?", re.S)
MASKS = [
    (re.compile(r"\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?Z?)?"), "<date>"),
    (re.compile(r"-?\d+\.\d\d\b"), "<score>"),
]


@dataclass(frozen=True)
class Snippet:
    line: int
    code: str
    expected: list[str] | None
    skipped: bool


def snippets() -> list[Snippet]:
    text = README.read_text(encoding="utf-8")
    found = []
    for match in BLOCK.finditer(text):
        expected = match.group(4)
        found.append(
            Snippet(
                line=text.count("\n", 0, match.start(2)) + 1,
                code=match.group(2),
                expected=None if expected is None else expected.rstrip("\n").split("\n"),
                skipped=match.group(1) is not None,
            )
        )
    return found


def mask(line: str) -> str:
    for pattern, token in MASKS:
        line = pattern.sub(token, line)
    return line.rstrip()


def test_readme_blocks_are_found() -> None:
    found = snippets()
    assert len(found) >= 10 and sum(s.expected is not None for s in found) >= 8
    assert all("memfuse" in s.code for s in found)


def test_every_readme_python_block_prints_what_the_readme_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    namespace: dict[str, object] = {"__name__": "__main__"}
    try:
        run_in_order(namespace)
    finally:
        close_shared_engines()  # the adapters' engines live in this folder: close them before it goes
    assert sorted(os.listdir(tmp_path)), "the snippets wrote their data in the fresh folder"


def run_in_order(namespace: dict[str, object]) -> None:
    for snippet in snippets():
        if snippet.skipped:
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(snippet.code, f"README.md:{snippet.line}", "exec"), namespace)
        if snippet.expected is None:
            continue
        printed = [mask(line) for line in out.getvalue().rstrip("\n").split("\n")]
        assert printed == [mask(line) for line in snippet.expected], f"README.md line {snippet.line}"
