"""Retrieval quality on LongMemEval: each question's haystack ingested as a memory would see it.

One user per question, one session per haystack session in date order, a round per
user turn and the assistant reply that follows; then the question is asked, scoped to that user.
Turn-level Recall@k (share of evidence turns retrieved), hit@k, NDCG@10 and session-level
Recall@k are averaged over the non-abstention questions, overall and per question type.
Messages carry their session's real date (``haystack_dates``) and each question is asked at
its ``question_date``, so time words in a question are read as the benchmark means them.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memfuse_memory.bench.peers import MemorySystem

DATA = Path(
    os.environ.get(
        "MEMFUSE_LONGMEMEVAL",
        Path(__file__).resolve().parents[2].parent / "shared" / "bench" / "longmemeval" / "longmemeval_s.jsonl.gz",
    )
)

VARIANTS: dict[str, dict[str, Any]] = {
    "bm25 (keyword only)": {"buffer": {"query": {"vector_weight": 0.0}}},
    "dense (vector only)": {"buffer": {"query": {"keyword_weight": 0.0}}},
    "default (message chunks, min-max fusion)": {},
    "contextual chunks, min-max fusion": {"buffer": {"hybrid_buffer": {"chunk_strategy": "contextual"}}},
    "contextual chunks, rrf fusion": {
        "buffer": {"hybrid_buffer": {"chunk_strategy": "contextual"}, "query": {"fusion": "rrf"}}
    },
}


def _weights(keyword: float, fusion: str = "minmax") -> dict[str, Any]:
    return {"buffer": {"query": {"fusion": fusion, "keyword_weight": keyword, "vector_weight": round(1 - keyword, 2)}}}


FUSION_GRID: dict[str, dict[str, Any]] = {
    **{f"min-max, keyword weight {w}": _weights(w) for w in (0.5, 0.6, 0.7, 0.8)},
    **{f"rrf, keyword weight {w}": _weights(w, "rrf") for w in (0.5, 0.6, 0.7)},
    "keyword only": VARIANTS["bm25 (keyword only)"],
}
"""Fusion settings tried on the tuning subset; the default is min-max at 0.5 / 0.5."""

TIME_BOOST_GRID: dict[str, dict[str, Any]] = {
    f"time boost {w}": {"buffer": {"query": {"time_boost_weight": w}}} for w in (0.0, 0.15, 0.3, 0.6)
}
"""Weights of the soft time boost (0 = off), compared with ``quality --question-type temporal-reasoning
--variants "time boost"``. On 32 temporal-reasoning questions (haystacks trimmed to 12 sessions; small:
one evidence turn moves a mean by ~0.02) 0.3 gave turn Recall@10 0.948 vs 0.937 off, NDCG@10 0.687
vs 0.676, Recall@5 0.672 vs 0.688; 0.6 scored like 0.3. The default is 0.3."""

METRICS = ["turn_recall@5", "turn_recall@10", "turn_hit@5", "ndcg@10", "session_recall@5", "session_recall@10"]


@dataclass
class Question:
    qid: str
    qtype: str
    text: str
    answer_sessions: set[str]
    sessions: list[tuple[str, datetime, list[dict[str, Any]]]]
    asked_at: datetime | None = None  # question_date: what "last week" in the question means


@dataclass
class Scores:
    per_question: list[dict[str, Any]] = field(default_factory=list)

    def mean(self, key: str, qtype: str | None = None) -> float:
        rows = [
            row[key] for row in self.per_question if (qtype is None or row["type"] == qtype) and row[key] is not None
        ]
        return sum(rows) / len(rows) if rows else float("nan")


def _date(text: str) -> datetime:
    return datetime.strptime(text.split(" (")[0] + " " + text.split(") ")[1], "%Y/%m/%d %H:%M").replace(tzinfo=UTC)


def load_questions(path: Path = DATA) -> list[Question]:
    """Non-abstention questions of LongMemEval S."""
    questions: list[Question] = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            raw = json.loads(line)
            if raw["question_id"].endswith("_abs"):
                continue
            sessions = sorted(
                zip(
                    raw["haystack_session_ids"],
                    map(_date, raw["haystack_dates"]),
                    raw["haystack_sessions"],
                    strict=True,
                ),
                key=lambda item: item[1],
            )
            questions.append(
                Question(
                    raw["question_id"],
                    raw["question_type"],
                    raw["question"],
                    set(raw["answer_session_ids"]),
                    sessions,
                    _date(raw["question_date"]),
                )
            )
    return questions


def trimmed(questions: list[Question], sessions: int) -> list[Question]:
    """Keep each question's answer sessions plus its first other sessions, ``sessions`` in all (smoke runs)."""
    out = []
    for q in questions:
        keep = [s for s in q.sessions if s[0] in q.answer_sessions]
        keep += [s for s in q.sessions if s[0] not in q.answer_sessions][: max(0, sessions - len(keep))]
        out.append(Question(q.qid, q.qtype, q.text, q.answer_sessions, sorted(keep, key=lambda s: s[1]), q.asked_at))
    return out


def stratified(questions: list[Question], count: int, seed: int = 0) -> list[Question]:
    """A fixed subset with every question type in proportion (at least one each)."""
    by_type: dict[str, list[Question]] = defaultdict(list)
    for question in questions:
        by_type[question.qtype].append(question)
    rng = random.Random(seed)
    chosen: list[Question] = []
    for qtype in sorted(by_type)[:count]:
        pool = sorted(by_type[qtype], key=lambda q: q.qid)
        take = max(1, round(count * len(pool) / len(questions)))
        chosen.extend(rng.sample(pool, min(take, len(pool))))
    return sorted(chosen, key=lambda q: q.qid)


def tuning_subset(questions: list[Question], reported: list[Question], count: int = 24) -> list[Question]:
    """Questions for choosing fusion settings: another stratified draw, disjoint from the reported ones."""
    taken = {q.qid for q in reported}
    return [q for q in stratified(questions, 80, seed=1) if q.qid not in taken][:count]


def _rounds(
    turns: list[dict[str, Any]], stamp: datetime, sid: str
) -> Iterator[tuple[list[dict[str, Any]], list[bool]]]:
    current: list[dict[str, Any]] = []
    evidence: list[bool] = []
    for n, turn in enumerate(turns):
        role = "assistant" if turn["role"] == "assistant" else "user"
        if role == "user" and current:
            yield current, evidence
            current, evidence = [], []
        content = turn["content"] if turn["content"].strip() else "(empty)"
        current.append({"role": role, "content": content, "id": f"{sid}#{n}", "created_at": stamp})
        evidence.append(bool(turn.get("has_answer")))
    if current:
        yield current, evidence


def _ndcg(ranked: list[str], relevant: set[str], k: int) -> float:
    gain = sum(1 / math.log2(i + 2) for i, mid in enumerate(ranked[:k]) if mid in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return gain / ideal if ideal else 0.0


def _ingest(system: MemorySystem, question: Question, user: str) -> tuple[set[str], dict[str, str], int]:
    """Add the haystack in date order; return the evidence ids, each id's session and the turn count."""
    evidence_ids: set[str] = set()
    session_of: dict[str, str] = {}
    turns_added = 0
    for index, (sid, stamp, turns) in enumerate(question.sessions):
        session = sid.replace("/", "_")
        # a haystack may hold the same session id twice: ids carry the position too
        for messages, flags in _rounds(turns, stamp, f"{user}:{index}:{session}"):
            for message, flag in zip(messages, flags, strict=True):
                message["id"] = message["id"].replace("/", "_")
                session_of[message["id"]] = sid
                if flag:
                    evidence_ids.add(message["id"])
            system.add(user, session, messages)
            turns_added += len(messages)
    return evidence_ids, session_of, turns_added


def _score(question: Question, ranked: list[str], evidence_ids: set[str], session_of: dict[str, str]) -> dict[str, Any]:
    sessions_ranked = list(dict.fromkeys(session_of[mid] for mid in ranked))
    row: dict[str, Any] = {"type": question.qtype}
    for k in (5, 10):
        found = len(evidence_ids & set(ranked[:k]))
        row[f"turn_recall@{k}"] = found / len(evidence_ids) if evidence_ids else None
        row[f"turn_hit@{k}"] = float(found > 0) if evidence_ids else None
        row[f"session_recall@{k}"] = len(question.answer_sessions & set(sessions_ranked[:k])) / len(
            question.answer_sessions
        )
    row["ndcg@10"] = _ndcg(ranked, evidence_ids, 10) if evidence_ids else None
    return row


def evaluate(
    questions: list[Question], system: MemorySystem, progress: Callable[[], Any] | None = None
) -> tuple[Scores, dict[str, float]]:
    """Ingest, flush and query every question on one memory system (ours or a peer), one user each."""
    scores = Scores()
    timing = {"ingest_seconds": 0.0, "flush_seconds": 0.0, "query_seconds": 0.0, "turns": 0}
    for question in questions:
        user = f"q-{question.qid}"
        started = time.perf_counter()
        evidence_ids, session_of, turns = _ingest(system, question, user)
        timing["turns"] += turns
        timing["ingest_seconds"] += time.perf_counter() - started
        started = time.perf_counter()
        system.flush()
        timing["flush_seconds"] += time.perf_counter() - started
        started = time.perf_counter()
        ranked = system.search(user, question.text, 50, question.asked_at)
        timing["query_seconds"] += time.perf_counter() - started
        scores.per_question.append(_score(question, ranked, evidence_ids, session_of))
        system.forget(user)
        if progress is not None:
            progress()
    return scores, timing


def summarize(scores: Scores, timing: dict[str, float]) -> dict[str, Any]:
    """Mean of every metric, overall and per question type, with the run's timing."""
    types = sorted({row["type"] for row in scores.per_question})
    return {
        "overall": {m: scores.mean(m) for m in METRICS},
        "by_type": {t: {m: scores.mean(m, t) for m in METRICS} for t in types},
        "timing": timing,
    }
