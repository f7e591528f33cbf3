"""The peers stage times each system under each embedding setting on one filled store: ours stays
on ONNX Runtime, a peer embeds with PyTorch under its defaults and with ONNX under the shared one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np

from memfuse_memory.bench import compare, peers


class Runtime:
    """A fake runtime that counts the texts it embedded."""

    dimension = 4

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        return np.ones((len(texts), 4), dtype=np.float32) / 2


class System:
    """Embeds every add and search through the switch, like a peer that embeds inline."""

    name = "fake"

    def __init__(self, switch: peers.RuntimeSwitch) -> None:
        self.switch = switch
        self.filled = 0

    def add(self, user: str, session: str, messages: list[peers.Message]) -> None:
        self.switch.embed([m["content"] for m in messages])

    def add_bulk(self, user: str, session: str, rounds: list[list[peers.Message]]) -> None:
        self.filled += len(rounds)
        self.switch.embed([m["content"] for r in rounds for m in r])

    def flush(self) -> None:
        return None

    def search(self, user: str, text: str, k: int, asked_at: datetime | None = None) -> list[str]:
        self.switch.embed([text])
        return []

    def forget(self, user: str) -> None:
        return None

    def close(self) -> None:
        return None


def _run(name: str) -> tuple[dict[int, dict], Runtime, Runtime, System]:
    onnx, torch = Runtime(), Runtime()
    switch = peers.RuntimeSwitch({"onnx": onnx, "torch": torch}, "onnx")
    system = System(switch)
    out = compare.scaling(system, name, [5, 8], 3, "salt", switch, list(compare.SETTINGS))
    return out, onnx, torch, system


def test_a_peer_is_timed_on_pytorch_under_its_defaults_and_on_onnx_under_the_shared_setting() -> None:
    out, onnx, torch, system = _run("langchain")
    assert system.filled == 8, "filled once per size, not once per setting"
    assert [out[size]["defaults"]["runtime"] for size in (5, 8)] == ["torch", "torch"]
    assert [out[size]["onnx"]["runtime"] for size in (5, 8)] == ["onnx", "onnx"]
    # per size and setting: 3 adds of 2 messages and 3 queries; the fill always on ONNX
    assert len(torch.texts) == 2 * (3 * 2 + 3)
    assert len(onnx.texts) == 8 + 2 * (3 * 2 + 3)
    assert all(set(out[size]["onnx"]) == {"runtime", "add", "query"} for size in (5, 8))


def test_ours_stays_on_onnx_in_every_setting() -> None:
    out, _, torch, _ = _run("ours")
    assert torch.texts == []
    assert {out[size][setting]["runtime"] for size in (5, 8) for setting in compare.SETTINGS} == {"onnx"}


def test_the_report_has_a_row_per_setting_and_reads_results_from_before_the_settings() -> None:
    out, *_ = _run("langchain")
    ours, *_ = _run("ours")
    report = {
        "sizes": [5, 8],
        "queries": 3,
        "questions": 0,
        "skipped": {},
        "systems": {
            "ours": {"name": "ours", "sizes": ours, "ingest_messages_per_s": 10.0},
            "langchain": {"name": "LangChain", "sizes": out, "ingest_messages_per_s": 5.0},
        },
    }
    text = "\n".join(compare.section(report))
    assert "| query p50 at 8 stored, defaults |" in text and "| query p50 at 8 stored, onnx |" in text
    old = {
        "sizes": [5],
        "queries": 3,
        "questions": 0,
        "skipped": {},
        "systems": {
            "ours": {
                "name": "ours",
                "sizes": {"5": {**ours[5]["onnx"], "fill_seconds": 1.0}},
                "ingest_messages_per_s": 1.0,
            }
        },
    }
    assert "| query p50 at 5 stored |" in "\n".join(compare.section(old))
