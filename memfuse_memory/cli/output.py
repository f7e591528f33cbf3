"""Terminal output: rich tables for people, plain JSON on stdout for machines (``--json``)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Console
from rich.table import Table


def to_json(value: Any) -> str:
    """Serialise a reply as indented UTF-8 JSON (paths and times become strings)."""
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


class Output:
    """Where a command writes: ``console`` (stdout) and ``errors`` (stderr), or JSON when asked."""

    def __init__(self, *, json_mode: bool) -> None:
        self.json_mode = json_mode
        self.console = Console(highlight=False, width=_width(sys.stdout.isatty()), soft_wrap=False)
        self.errors = Console(stderr=True, highlight=False, width=_width(sys.stderr.isatty()))

    def json(self, value: Any) -> None:
        """Write one JSON document to stdout."""
        sys.stdout.write(to_json(value) + "\n")
        sys.stdout.flush()

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """Human output; silent in JSON mode so stdout stays one parseable document."""
        if not self.json_mode:
            self.console.print(*objects, **kwargs)

    def note(self, message: str) -> None:
        """A progress or status line on stderr (never mixed into JSON on stdout)."""
        self.errors.print(message, markup=True)


def _width(terminal: bool) -> int | None:
    """Terminal width on a terminal or with COLUMNS set; 120 columns when piped (rich would use 80)."""
    return None if terminal or os.environ.get("COLUMNS") else 120


def short(text: str, limit: int = 160) -> str:
    """One-line preview of a message for tables."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def when(iso_time: str | None) -> str:
    """``2026-03-02T18:00:00.123Z`` -> ``2026-03-02 18:00:00`` for tables."""
    if not iso_time:
        return ""
    return iso_time.replace("T", " ").rstrip("Z").split(".")[0]


def results_table(results: Iterable[Mapping[str, Any]], *, title: str | None = None, width: int = 120) -> Table:
    """Query hits: rank, score, time, session, role, content and how each was found (fewer columns if narrow)."""
    wide = width >= 100
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("score", justify="right")
    if wide:
        table.add_column("when", no_wrap=True)
    table.add_column("session", overflow="fold")
    table.add_column("role")
    table.add_column("content", overflow="fold", min_width=24)
    if wide:
        table.add_column("found by", style="dim")
    for rank, hit in enumerate(results, 1):
        retrieval = hit.get("retrieval") or {}
        methods = "+".join(retrieval.get("methods") or [])
        row = [f"{hit.get('score', 0.0):.3f}", str(hit.get("session_id", "")), str(hit.get("role", ""))]
        row.append(short(str(hit.get("content", ""))))
        if wide:
            row.insert(1, when(hit.get("created_at")))
            row.append(f"{methods} · {hit.get('source', '?')}")
        table.add_row(str(rank), *row)
    return table


def messages_table(messages: Iterable[Mapping[str, Any]], *, title: str | None = None) -> Table:
    """A session's messages in order: time, role (and name) and content."""
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right", style="dim")
    table.add_column("when", no_wrap=True)
    table.add_column("role")
    table.add_column("content", overflow="fold", min_width=24)
    for index, message in enumerate(messages, 1):
        role = str(message.get("role", ""))
        if message.get("name"):
            role += f" ({message['name']})"
        table.add_row(str(index), when(message.get("created_at")), role, str(message.get("content", "")))
    return table


def flatten(value: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dict -> ``[("a.b", 1), ...]`` so stats fit a two-column table."""
    rows: list[tuple[str, Any]] = []
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping) and item:
            rows.extend(flatten(item, name + "."))
        else:
            rows.append((name, item))
    return rows


def stats_table(stats: Mapping[str, Any], title: str = "memfuse-memory stats") -> Table:
    """Every stats counter, one row each, grouped by component."""
    table = Table(title=title, title_justify="left")
    table.add_column("component", style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for section, body in stats.items():
        if isinstance(body, Mapping):
            for index, (metric, value) in enumerate(flatten(body)):
                table.add_row(section if index == 0 else "", metric, _cell(value))
            table.add_section()
        else:
            table.add_row(section, "", _cell(body))
    return table


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Mapping):
        return json.dumps(value) if value else "{}"
    return str(value)
