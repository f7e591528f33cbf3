"""Run LongMemEval variants resumably: one ingest per index configuration, each query setting over it.

Variants that differ only in their ``buffer.query`` settings (fusion, weights, time boost) share one
ingest of each question and are asked in turn (:meth:`peers.Ours.search_as`). Each variant's rows go
to ``OUT/quality/<variant>.jsonl`` as questions finish, tagged with the variant's settings, so a
killed run resumes where it stopped and a question already run (say, in the tuning draw) is not
run again. A journal's rows are tagged with the whole resolved configuration, so changing a default
reruns what it changes; changing the ranking code means removing those journals.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memfuse_memory.bench import longmemeval, peers
from memfuse_memory.bench.bm25_floor import PlainBM25
from memfuse_memory.bench.lme_metrics import Journal
from memfuse_memory.config import load_config
from memfuse_memory.embedding.base import Embedder

PLAIN_BM25 = "plain BM25 (the README floor's recipe)"
"""Not a configuration of ours: BM25 over each haystack's turns as the data's README computes its floor."""


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _settings(variant: dict[str, Any] | None) -> dict[str, Any] | None:
    """The whole configuration a variant runs with (its overrides on the packaged defaults)."""
    return None if variant is None else load_config(variant).model_dump(mode="json")


def _ingest_key(variant: dict[str, Any] | None) -> str:
    """What decides the stored index: the variant's whole configuration less its query section."""
    settings = _settings(variant)
    if settings is None:
        return PLAIN_BM25
    return json.dumps({**settings, "buffer": {**settings["buffer"], "query": None}}, sort_keys=True)


def _journal(out: Path, name: str, variant: dict[str, Any] | None, trim: int) -> Journal:
    return Journal(out / "quality" / f"{_slug(name)}.jsonl", json.dumps([_settings(variant), trim], sort_keys=True))


def finished(
    questions: list[longmemeval.Question],
    how: str,
    variants: dict[str, dict[str, Any] | None],
    out: Path,
    untuned: set[str],
    trim: int = 0,
) -> dict[str, Any]:
    """The scores of what the journals hold, on the questions every variant has finished (runs nothing),
    so variants are compared on the same questions when a run was stopped part way."""
    journals = {name: _journal(out, name, variant, trim) for name, variant in variants.items()}
    done = [q.qid for q in questions if all(q.qid in journal.rows for journal in journals.values())]
    result: dict[str, Any] = {"questions": len(done), "subset": f"{how}; those every variant has finished"}
    result["variants"] = {
        name: longmemeval.summarize([journal.rows[qid] for qid in done], {}, untuned)
        for name, journal in journals.items()
    }
    return result


def run(
    questions: list[longmemeval.Question],
    how: str,
    variants: dict[str, dict[str, Any] | None],
    embedder: Embedder,
    out: Path,
    untuned: set[str],
    written: Callable[[dict[str, Any]], None],
    trim: int = 0,
) -> dict[str, Any]:
    """Scores of each variant (None: plain BM25) on the questions (haystacks trimmed to ``trim`` sessions,
    0: whole); ``written`` gets the result so far every few questions and after each group."""
    result: dict[str, Any] = {"questions": len(questions), "subset": how, "variants": {}}
    groups: dict[str, dict[str, dict[str, Any] | None]] = {}
    for name, variant in variants.items():
        groups.setdefault(_ingest_key(variant), {})[name] = variant
    for key, members in groups.items():
        journals = {
            name: Journal(
                out / "quality" / f"{_slug(name)}.jsonl", json.dumps([_settings(variant), trim], sort_keys=True)
            )
            for name, variant in members.items()
        }
        print(f"quality: {', '.join(members)} on {len(questions)} questions ...", flush=True)

        def progress(journals: dict[str, Journal] = journals) -> None:
            done = [q.qid for q in questions if all(q.qid in j.rows for j in journals.values())]
            if len(done) % 10 == 0:
                for name, journal in journals.items():
                    rows = [journal.rows[qid] for qid in done]
                    result["variants"][name] = longmemeval.summarize(rows, {"questions_done": len(done)}, untuned)
                written(result)

        if key == PLAIN_BM25:
            rows, timing = longmemeval.evaluate_many(questions, PlainBM25(), dict.fromkeys(members), journals, progress)
        else:
            first = next(iter(members.values())) or {}
            queries = {name: (variant or {}).get("buffer", {}).get("query", {}) for name, variant in members.items()}
            base = {**first, "buffer": {k: v for k, v in first.get("buffer", {}).items() if k != "query"}}
            with peers.running(lambda folder, b=base: peers.Ours(folder, embedder, b)) as system:
                rows, timing = longmemeval.evaluate_many(questions, system, queries, journals, progress)
        for name in members:
            result["variants"][name] = longmemeval.summarize(rows[name], timing, untuned)
        written(result)
    return result
