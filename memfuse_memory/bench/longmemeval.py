"""Retrieval quality on LongMemEval: each question's haystack ingested as a memory would see it.

One user per question, one session per haystack session in date order, a round per
user turn and the assistant reply that follows; then the question is asked, scoped to that user.
Each question's row (where its evidence landed) is appended to a journal as it finishes, so a
killed run resumes; the metrics (LongMemEval's own and ours, see :mod:`lme_metrics`) are averaged
over the non-abstention questions, overall and per question type.
Messages carry their session's real date (``haystack_dates``) and each question is asked at
its ``question_date``, so time words in a question are read as the benchmark means them.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memfuse_memory.bench import lme_metrics
from memfuse_memory.bench.peers import MemorySystem

DATA = Path(
    os.environ.get(
        "MEMFUSE_LONGMEMEVAL",
        Path(__file__).resolve().parents[2].parent / "shared" / "bench" / "longmemeval" / "longmemeval_s.jsonl.gz",
    )
)


def _strategy(name: str) -> dict[str, Any]:
    return {"hybrid_buffer": {"chunk_strategy": name}}


def _variant(strategy: str, fusion: str = "minmax", keyword: float = 0.5) -> dict[str, Any]:
    query = {"fusion": fusion, "keyword_weight": keyword, "vector_weight": round(1 - keyword, 2)}
    return {"buffer": {**_strategy(strategy), "query": query}}


VARIANTS: dict[str, dict[str, Any] | None] = {
    "plain BM25 (the README floor's recipe)": None,
    "bm25 (keyword only)": {"buffer": {"query": {"keyword_weight": 1.0, "vector_weight": 0.0}}},
    "dense (vector only)": {"buffer": {"query": {"keyword_weight": 0.0, "vector_weight": 1.0}}},
    "default": {},
    "one vector per message, long ones as passages (turn chunks), min-max 0.5": _variant("turn"),
}
"""What ``quality`` runs (None: plain BM25 in memory, not ours); ``default`` is the packaged configuration."""

STRATEGIES = ("message", "turn", "contextual")
FUSION_GRID: dict[str, dict[str, Any] | None] = {
    f"{strategy} chunks, {label}": _variant(strategy, fusion, keyword)
    for strategy in STRATEGIES
    for label, fusion, keyword in (
        ("keyword only", "minmax", 1.0),
        ("vector only", "minmax", 0.0),
        ("min-max 0.5", "minmax", 0.5),
        ("min-max 0.6", "minmax", 0.6),
        ("min-max 0.7", "minmax", 0.7),
        ("rrf 0.5", "rrf", 0.5),
        ("rrf 0.6", "rrf", 0.6),
        ("z-score 0.5", "zscore", 0.5),
        ("z-score 0.6", "zscore", 0.6),
    )
}
"""Every setting tried on the tuning draw: chunk strategy x fusion kind and keyword weight."""

TIME_BOOST_GRID: dict[str, dict[str, Any]] = {
    f"time boost {w}": {"buffer": {"query": {"time_boost_weight": w}}} for w in (0.0, 0.15, 0.3, 0.6)
}
"""Weights of the soft time boost (0 = off), compared with ``quality --question-type temporal-reasoning
--variants "time boost"``. On 32 temporal-reasoning questions (haystacks trimmed to 12 sessions; small:
one evidence turn moves a mean by ~0.02) 0.3 gave turn Recall@10 0.948 vs 0.937 off, NDCG@10 0.687
vs 0.676, Recall@5 0.672 vs 0.688; 0.6 scored like 0.3. The default is 0.3."""

ROLE_PRIOR_GRID: dict[str, dict[str, Any]] = {
    f"assistant weight {w}": {"buffer": {"query": {"assistant_weight": w}}} for w in (1.0, 0.5, 0.2, 0.0)
}
"""Shares of its score an assistant turn keeps (1.0 = off), chosen on the tuning draw with
``fusion --variants "assistant weight"``."""

FRAME_WORD_GRID: dict[str, dict[str, Any]] = {
    f"frame word weight {w}": {"buffer": {"query": {"frame_word_weight": w}}} for w in (1.0, 0.3, 0.0)
} | {
    "frame word weight 1.0, assistant weight 1.0 (the ranking before both)": {
        "buffer": {"query": {"frame_word_weight": 1.0, "assistant_weight": 1.0}}
    }
}
"""Keyword weights of the question-frame words (``ranking.keywords.FRAME_WORDS``; 1.0 = plain BM25's), and
the default before the role prior and frame weights, with ``quality --variants "frame word weight"``."""

CANDIDATE_POOL_GRID: dict[str, dict[str, Any]] = {
    f"candidate pool {n}": {"buffer": {"query": {"candidate_pool": n}}} for n in (50, 100, 200)
}
"""Candidates drawn from each ranking before fusion (the default is 100, chosen on the tuning draw with
``fusion --variants "candidate pool"``; 50 was the default before)."""


CHUNK_STRATEGY_GRID: dict[str, dict[str, Any]] = {
    f"chunk strategy {name}": {"buffer": _strategy(name)} for name in ("message", "user")
}
"""One vector per round against user messages embedded alone (as passages) and replies with the question they answer,
each with the default ranking, with ``fusion --variants "chunk strategy"``."""


def tuning_grids() -> dict[str, dict[str, Any] | None]:
    """Every grid the ``fusion`` command chooses from on the tuning draw (``quality`` can run them too)."""
    return FUSION_GRID | ROLE_PRIOR_GRID | FRAME_WORD_GRID | CANDIDATE_POOL_GRID | CHUNK_STRATEGY_GRID


METRICS = lme_metrics.METRICS


@dataclass
class Question:
    qid: str
    qtype: str
    text: str
    answer_sessions: set[str]
    sessions: list[tuple[str, datetime, list[dict[str, Any]]]]
    asked_at: datetime | None = None  # question_date: what "last week" in the question means


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


TUNING_COUNT = 100


def tuning_subset(questions: list[Question], count: int = TUNING_COUNT) -> list[Question]:
    """The fixed stratified draw (seed 1) on which every ranking setting is chosen; the rest stay untuned.
    A smaller ``count`` draws from within it, so a quick choice never touches an untuned question."""
    draw = stratified(questions, TUNING_COUNT, seed=1)
    return draw if count >= TUNING_COUNT else stratified(draw, count, seed=1)


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


def _ingest(system: MemorySystem, question: Question, user: str) -> tuple[set[str], dict[str, str], set[str], int]:
    """Add the haystack in date order; return the evidence ids, each id's session, the user turns' ids
    and the turn count."""
    evidence_ids: set[str] = set()
    session_of: dict[str, str] = {}
    user_ids: set[str] = set()
    turns_added = 0
    for index, (sid, stamp, turns) in enumerate(question.sessions):
        session = sid.replace("/", "_")
        # a haystack may hold the same session id twice: ids carry the position too
        for messages, flags in _rounds(turns, stamp, f"{user}:{index}:{session}"):
            for message, flag in zip(messages, flags, strict=True):
                message["id"] = message["id"].replace("/", "_")
                session_of[message["id"]] = sid
                if message["role"] == "user":
                    user_ids.add(message["id"])
                if flag:
                    evidence_ids.add(message["id"])
            system.add(user, session, messages)
            turns_added += len(messages)
    return evidence_ids, session_of, user_ids, turns_added


def _row(
    question: Question, ranked: list[str], evidence_ids: set[str], session_of: dict[str, str], user_ids: set[str]
) -> dict[str, Any]:
    """Where the question's evidence landed (0-based ranks): among all turns and answer sessions (ours),
    and among user turns alone, LongMemEval's retrieval corpus (``official``)."""
    sessions_ranked = list(dict.fromkeys(session_of[mid] for mid in ranked))
    users = [mid for mid in ranked if mid in user_ids]
    correct = evidence_ids & user_ids
    correct_sessions = {session_of[mid] for mid in correct}
    first: dict[str, int] = {}
    for position, mid in enumerate(users):
        first.setdefault(session_of[mid], position)
    return {
        "qid": question.qid,
        "type": question.qtype,
        "turn_correct": len(evidence_ids),
        "turn_ranks": lme_metrics.ranks(ranked, evidence_ids),
        "session_correct": len(question.answer_sessions),
        "session_ranks": lme_metrics.ranks(sessions_ranked, question.answer_sessions),
        "official": {
            "turns": len(users),
            "turn_correct": len(correct),
            "turn_ranks": lme_metrics.ranks(users, correct),
            "session_correct": len(correct_sessions),
            "session_first": sorted(first.values()),
            "session_first_correct": sorted(first[sid] for sid in correct_sessions if sid in first),
            "session_hits": [i for i, mid in enumerate(users) if session_of[mid] in correct_sessions],
            "session_turns": sum(1 for mid in user_ids if session_of[mid] in correct_sessions),
        },
    }


def evaluate(
    questions: list[Question],
    system: MemorySystem,
    progress: Callable[[], Any] | None = None,
    journal: lme_metrics.Journal | None = None,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Ingest, flush and query every question on one memory system (ours or a peer), one user each;
    questions already in the journal are not run again, new rows are appended to it."""
    rows, timing = evaluate_many(questions, system, {"": None}, {"": journal} if journal else None, progress)
    return rows[""], timing


def evaluate_many(
    questions: list[Question],
    system: MemorySystem,
    queries: dict[str, dict[str, Any] | None],
    journals: dict[str, lme_metrics.Journal] | None = None,
    progress: Callable[[], Any] | None = None,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, float]]:
    """Like :func:`evaluate`, asking each question once per named query setting (None: the system's
    own; else query-config overrides, see :meth:`peers.Ours.search_as`) over one ingest."""
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in queries}
    timing = {"ingest_seconds": 0.0, "flush_seconds": 0.0, "query_seconds": 0.0, "turns": 0, "resumed": 0}
    for question in questions:
        if journals is not None and all(question.qid in journals[name].rows for name in queries):
            for name in queries:
                rows[name].append(journals[name].rows[question.qid])
            timing["resumed"] += 1
            continue
        user = f"q-{question.qid}"
        started = time.perf_counter()
        evidence_ids, session_of, user_ids, turns = _ingest(system, question, user)
        timing["turns"] += turns
        timing["ingest_seconds"] += time.perf_counter() - started
        started = time.perf_counter()
        system.flush()
        timing["flush_seconds"] += time.perf_counter() - started
        for name, overrides in queries.items():
            started = time.perf_counter()
            if overrides is None:
                ranked = system.search(user, question.text, 50, question.asked_at)
            else:
                ranked = system.search_as(user, question.text, 50, question.asked_at, overrides)  # type: ignore[attr-defined]
            timing["query_seconds"] += time.perf_counter() - started
            row = _row(question, ranked, evidence_ids, session_of, user_ids)
            rows[name].append(row)
            if journals is not None:
                journals[name].add(row)
        system.forget(user)
        if progress is not None:
            progress()
    return rows, timing


def summarize(rows: list[dict[str, Any]], timing: dict[str, float], untuned: set[str] | None = None) -> dict[str, Any]:
    """Every metric, overall and per question type, with the run's timing; ``untuned`` (question ids
    never used to choose a setting) adds the same summary over those questions alone."""
    result = {**lme_metrics.summary(rows), "timing": timing}
    if untuned is not None:
        result["untuned"] = lme_metrics.summary([row for row in rows if row["qid"] in untuned])
    return result
