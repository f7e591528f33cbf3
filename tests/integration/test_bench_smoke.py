"""A tiny run of every benchmark, so the benchmark command keeps working (numbers are not checked),
and a check that every compared system finds, for its own user only, a message by its exact text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memfuse_memory.bench import compare, latency, longmemeval, peers, startup
from memfuse_memory.bench.__main__ import main
from memfuse_memory.bench.embed_cache import CachedEmbedder
from memfuse_memory.config import QueryConfig
from memfuse_memory.embedding.loader import load_embedder


def run(tmp_path: Path, *args: str) -> dict:
    assert main([*args, "--out", str(tmp_path)]) == 0
    return json.loads((tmp_path / "results.json").read_text())


def test_latency_smoke(tmp_path: Path) -> None:
    results = run(tmp_path, "latency", "--sizes", "60,120", "--repeat", "5")
    assert set(results["latency"]["sizes"]) == {"60", "120"}
    assert results["latency"]["sizes"]["120"]["stored messages"] >= 120
    assert results["latency"]["sizes"]["120"]["flush"]["count"] > 0
    assert [row["cold query embeddings from cache"] for row in results["latency"]["sizes"].values()] == [0, 0]
    parts = results["latency"]["sizes"]["120"]
    assert all(parts[key]["p50"] > 0 for key in ("query embedding", "bare chroma query", "keyword search"))
    assert "## Seed latency table" in (tmp_path / "REPORT.md").read_text()
    pool = parts["candidate pool"]
    assert pool == QueryConfig().candidate_pool  # the parts draw what the engine's query draws
    assert (
        f"one bare Chroma query of the user's collection for the {pool} candidates"
        in (tmp_path / "REPORT.md").read_text()
    )
    assert (tmp_path / "latency.png").stat().st_size > 1000


def test_latency_on_a_chroma_server_smoke(tmp_path: Path) -> None:
    results = run(tmp_path, "latency", "--sizes", "30", "--repeat", "3", "--vector-store", "server")
    assert results["latency"]["sizes"]["30"]["stored messages"] >= 30
    assert results["latency"]["sizes"]["30"]["flush"]["count"] > 0
    assert "real MiniLM and a Chroma server in its own process" in (tmp_path / "REPORT.md").read_text()
    server = tmp_path / "chroma-server"
    assert "Frontend server listening" in (server / "server.log").read_text()
    assert (server / "db" / "chroma.sqlite3").stat().st_size > 0  # the vectors went to the server


def test_throughput_smoke(tmp_path: Path) -> None:
    results = run(tmp_path, "throughput", "--rounds", "12")
    assert results["throughput"]["memfuse_rounds_per_s"] > 0 and results["throughput"]["ratio"] > 0
    assert "## Ingest throughput" in (tmp_path / "REPORT.md").read_text()


def test_http_smoke(tmp_path: Path) -> None:
    results = run(tmp_path, "http", "--clients", "3", "--http-seconds", "2")
    http = results["http"]
    assert http["http"]["operations"]["add"]["count"] > 0 and http["in_process"]["operations"]["add"]["count"] > 0
    assert http["http"]["errors"] == 0 and http["http"]["lost"] == 0 and http["server_exit_code"] == 0
    assert "## HTTP gateway under load" in (tmp_path / "REPORT.md").read_text()


def test_runtimes_smoke(tmp_path: Path) -> None:
    results = run(tmp_path, "runtimes", "--repeat", "3")
    assert results["runtimes"]["min_cosine"] >= 0.9999
    assert results["runtimes"]["runtimes"]["onnx"]["class"] == "OnnxEmbedder"
    assert "## Embedding runtimes" in (tmp_path / "REPORT.md").read_text()


def test_startup_smoke() -> None:
    result = startup.measure("onnx", repeat=1)
    assert result["torch_imported"] is False
    assert result["rss_after_start_mb"]["median"] > 0 and result["cli_query_s"]["median"] > 0
    assert any("from_config + start" in line for line in startup.section([result]))


def test_keep_adds_a_stage_to_the_earlier_report_and_names_both_commands(tmp_path: Path) -> None:
    first = run(tmp_path, "latency", "--sizes", "30", "--repeat", "3")
    kept = run(tmp_path, "throughput", "--rounds", "4", "--keep")
    assert kept["latency"] == first["latency"] and "throughput" in kept
    assert kept["commands"]["latency"].endswith("latency --sizes 30 --repeat 3 --out " + str(tmp_path))
    report = (tmp_path / "REPORT.md").read_text()
    assert "## Ingest throughput" in report and "| 30 stored |" in report
    assert "(latency)" in report and "(throughput)" in report
    replaced = run(tmp_path, "throughput", "--rounds", "4")
    assert "latency" not in replaced and "## Seed latency table" not in (tmp_path / "REPORT.md").read_text()


def test_longmemeval_smoke(tmp_path: Path) -> None:
    if not longmemeval.DATA.exists():
        pytest.skip(f"LongMemEval data not present at {longmemeval.DATA}")
    args = ("quality", "--questions", "2", "--haystack-sessions", "2", "--variants", "BM25,default")
    results = run(tmp_path, *args)
    variants = results["quality"]["variants"]
    assert set(variants) == {"plain BM25 (the README floor's recipe)", "default"}
    for row in variants.values():
        assert 0.0 <= row["overall"]["session_recall_all@5"] <= 1.0
        assert row["timing"]["turns"] > 0
    assert (tmp_path / "quality.png").exists()
    journal = tmp_path / "quality" / "default.jsonl"
    assert len(journal.read_text().splitlines()) == results["quality"]["questions"]
    again = run(tmp_path, *args)  # resumed from the journals: nothing ingested again
    assert again["quality"]["variants"]["default"]["timing"]["resumed"] == results["quality"]["questions"]
    assert again["quality"]["variants"]["default"]["overall"] == variants["default"]["overall"]
    reported = run(tmp_path, *args, "--finished-only")["quality"]  # runs nothing, reads the journals
    assert reported["variants"]["default"]["overall"] == variants["default"]["overall"]


def test_fusion_smoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not longmemeval.DATA.exists():
        pytest.skip(f"LongMemEval data not present at {longmemeval.DATA}")
    grid = dict(list(longmemeval.FUSION_GRID.items())[:2])
    monkeypatch.setattr(longmemeval, "FUSION_GRID", grid)
    monkeypatch.setattr(longmemeval, "ROLE_PRIOR_GRID", {})  # the fusion command runs these grids too
    monkeypatch.setattr(longmemeval, "FRAME_WORD_GRID", {})
    monkeypatch.setattr(longmemeval, "CANDIDATE_POOL_GRID", {})
    monkeypatch.setattr(longmemeval, "CHUNK_STRATEGY_GRID", {})
    results = run(tmp_path, "fusion", "--tuning-questions", "6", "--haystack-sessions", "2")
    assert set(results["fusion"]["variants"]) == set(grid)
    assert results["fusion"]["questions"] == len(longmemeval.tuning_subset(longmemeval.load_questions(), 6))
    assert "## Choosing the ranking settings" in (tmp_path / "REPORT.md").read_text()


def test_the_tuning_draw_is_fixed_and_covers_every_type() -> None:
    if not longmemeval.DATA.exists():
        pytest.skip(f"LongMemEval data not present at {longmemeval.DATA}")
    questions = longmemeval.load_questions(longmemeval.DATA)
    tuning = longmemeval.tuning_subset(questions)
    assert len(tuning) == longmemeval.TUNING_COUNT == 100
    assert [q.qid for q in tuning] == [q.qid for q in longmemeval.tuning_subset(questions)]
    assert {q.qtype for q in tuning} == {q.qtype for q in questions}


def _conversation(user: str) -> list[list[dict[str, str]]]:
    """Enough distinct rounds (about 1,500 tokens) that LlamaIndex's short-term queue flushes to its vector block."""
    return [
        [
            {"role": "user", "content": f"{user} wrote on day {n} about {topic}.", "id": f"{user}-{n}-u"},
            {"role": "assistant", "content": f"Noted for {user}: {topic}, day {n}.", "id": f"{user}-{n}-a"},
        ]
        for n, topic in enumerate(latency.TOPICS * 4)
    ]


@pytest.mark.parametrize("name", compare.SYSTEMS)
def test_peer_finds_its_own_message_by_exact_text(tmp_path: Path, name: str) -> None:
    if peers.unavailable(name):
        pytest.skip(peers.unavailable(name))
    embedder = CachedEmbedder(load_embedder(), tmp_path / "cache.sqlite3", "all-MiniLM-L6-v2")
    with peers.running(peers.factory(name, embedder)) as system:
        for user in ("alice", "bob"):
            for messages in _conversation(user):
                system.add(user, "s1", messages)
        system.flush()
        # early messages: every system has them in its vector store (LlamaIndex keeps the newest in its queue)
        for probe in (_conversation("alice")[0][0], _conversation("alice")[5][1]):
            found = system.search("alice", probe["content"], 10)
            assert probe["id"] in found
            assert all(mid.startswith("alice-") for mid in found)
        system.forget("alice")
        assert system.search("alice", _conversation("alice")[0][0]["content"], 10) == []
        assert system.search("bob", _conversation("bob")[0][0]["content"], 10)


@pytest.mark.timeout(900)
def test_peers_smoke(tmp_path: Path) -> None:
    results = run(tmp_path, "peers", "--sizes", "10,20", "--repeat", "2", "--rounds", "2", "--questions", "0")
    report = results["peers"]
    assert set(report["systems"]) | set(report["skipped"]) == set(compare.SYSTEMS)
    for name, system in report["systems"].items():
        assert set(system["sizes"]) == {"10", "20"}
        assert system["ingest_messages_per_s"] > 0
        for size in system["sizes"].values():  # timed on the real ONNX and PyTorch runtimes
            assert size["onnx"]["runtime"] == "onnx" and size["onnx"]["query"]["p50"] > 0
            assert size["defaults"]["runtime"] == ("onnx" if name == "ours" else "torch")
    text = (tmp_path / "REPORT.md").read_text()
    assert "## Peers side by side" in text and "query p50 at 20 stored, defaults" in text
    assert "query p50 at 20 stored, onnx" in text
    assert (tmp_path / "peers_scaling.png").stat().st_size > 1000
