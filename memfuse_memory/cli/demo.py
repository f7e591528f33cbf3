"""``memfuse-memory demo``: the five-minute tour on the real engine (MiniLM + Chroma + SQLite).

It stores the bundled sample conversation (one user, four sessions) round by round, shows the
rounds moving RoundBuffer -> HybridBuffer -> storage, answers questions whose answers sit in
different sessions, then prints one session's history and the stats. Each run first deletes
the sample's sessions of the demo user, so it can be re-run in the same data directory.
"""

from __future__ import annotations

import json
import time
from importlib import resources
from typing import Any

from rich.panel import Panel
from rich.table import Table

from memfuse_memory.cli.context import Context
from memfuse_memory.cli.errors import EXIT_OK
from memfuse_memory.cli.output import messages_table, results_table, stats_table

DEMO_USER = "demo"
SAMPLE_FILE = "sample_conversation.json"
TOP_K = 3

PIPELINE = """\
The sample is added one round at a time with add(), one session after another.
[bold]add()[/] commits each round to SQLite before it returns (durable), then queues it in the
[bold]RoundBuffer[/] of its session, where a background worker embeds it (MiniLM) as soon as it can.
Past {rb_size} rounds or {rb_tokens} tokens a session's rounds move to the [bold]HybridBuffer[/] (chunks and
vectors, searchable in memory). Past {hb_size} embedded rounds the oldest are flushed to [bold]storage[/]
(Chroma vectors + SQLite). add() never waits for the model; [bold]flush_all()[/] waits until everything is
in storage. Queries search all three stages at once, by keyword and by meaning."""


def load_sample() -> dict[str, Any]:
    """The bundled sample conversation (``memfuse_memory/data/sample_conversation.json``)."""
    text = resources.files("memfuse_memory").joinpath("data", SAMPLE_FILE).read_text(encoding="utf-8")
    sample: dict[str, Any] = json.loads(text)
    return sample


def stage(label: str, stats: dict[str, Any]) -> dict[str, Any]:
    """Where the rounds are right now, from ``get_stats()``."""
    round_buffer, hybrid, storage = stats["round_buffer"], stats["hybrid_buffer"], stats["storage"]
    return {
        "stage": label,
        "round_buffer_rounds": round_buffer["round_count"],
        "round_buffer_tokens": round_buffer["current_tokens"],
        "hybrid_buffer_rounds": hybrid["round_count"],
        "hybrid_buffer_chunks": hybrid["chunk_count"],
        "pending_embeddings": hybrid["pending_embeddings"],
        "transfers": stats["write_buffer"]["total_transfers"],
        "stored_rounds": storage["rounds"] - storage["pending_rounds"],
        "sqlite_messages": storage["messages"],
    }


def stages_table(stages: list[dict[str, Any]]) -> Table:
    """The pipeline snapshots as one table, a row per moment."""
    table = Table(title="Rounds moving through the buffers", title_justify="left")
    columns = [
        ("stage", "stage"),
        ("round_buffer_rounds", "RoundBuffer\nrounds"),
        ("round_buffer_tokens", "RoundBuffer\ntokens"),
        ("hybrid_buffer_rounds", "HybridBuffer\nrounds"),
        ("pending_embeddings", "not yet\nembedded"),
        ("stored_rounds", "rounds in\nstorage"),
        ("sqlite_messages", "messages\nin SQLite"),
    ]
    for key, title in columns:
        if key == "stage":
            table.add_column(title, no_wrap=True)
        else:
            table.add_column(title, justify="right")
    for row in stages:
        table.add_row(*(str(row[key]) for key, _ in columns))
    return table


def run(ctx: Context) -> int:
    """Run the tour and print it (or one JSON document with ``--json``)."""
    sample = load_sample()
    user: str = ctx.args.user
    out = ctx.out
    config = ctx.config
    sessions: list[dict[str, Any]] = sample["sessions"]
    out.print(
        Panel.fit(
            f"memfuse-memory demo: {len(sessions)} sessions of user [bold]{user}[/] "
            f"into [bold]{config.storage.data_dir}[/]",
            border_style="cyan",
        )
    )
    out.note("Loading the embedding model and opening the stores…")
    started = time.perf_counter()
    with ctx.service() as service:
        opened = time.perf_counter()
        # Reset only the sample's own sessions, so a re-run starts clean and other memory is kept.
        reset = sum(service.delete_session(s["session_id"], user_id=user)["data"]["deleted_messages"] for s in sessions)
        stages = [stage("start", service.get_stats())]
        for session in sessions:
            for round_ in session["rounds"]:
                service.add(round_, session["session_id"], user_id=user)
            stages.append(stage(f"+ {session['session_id']}", service.get_stats()))
        flushed = service.flush_all()["data"]
        stages.append(stage("after flush_all()", service.get_stats()))
        ingested = time.perf_counter()
        answers = []
        for item in sample["questions"]:
            results = service.query(item["question"], TOP_K, user_id=user)["data"]["results"]
            expected = str(item["answer"]).lower()
            answers.append(
                {
                    "question": item["question"],
                    "expected": item["answer"],
                    "found_in_top_hit": bool(results) and expected in results[0]["content"].lower(),
                    "found_in_results": any(expected in hit["content"].lower() for hit in results),
                    "results": results,
                }
            )
        shown = sessions[1] if len(sessions) > 1 else sessions[0]
        history = service.get_messages_by_session(shown["session_id"], user_id=user)["data"]["messages"]
        stats = service.get_stats()
    finished = time.perf_counter()
    timings = {
        "open_seconds": round(opened - started, 2),
        "ingest_and_flush_seconds": round(ingested - opened, 2),
        "total_seconds": round(finished - started, 2),
    }
    report = {
        "data_dir": str(config.storage.data_dir),
        "user_id": user,
        "reset_messages": reset,
        "sessions": [s["session_id"] for s in sessions],
        "stages": stages,
        "flushed_rounds": flushed["flushed_rounds"],
        "answers": answers,
        "history": {"session_id": shown["session_id"], "messages": history},
        "stats": stats,
        "timings": timings,
    }
    if out.json_mode:
        out.json(report)
        return EXIT_OK
    _render(ctx, report, sample)
    return EXIT_OK


def _render(ctx: Context, report: dict[str, Any], sample: dict[str, Any]) -> None:
    out = ctx.out
    buffer = ctx.config.buffer
    timings = report["timings"]
    if report["reset_messages"]:
        out.print(f"[dim]Removed {report['reset_messages']} messages of a previous demo run.[/]")
    out.print(f"[dim]Model and stores ready in {timings['open_seconds']:.1f} s.[/]\n")
    out.print(
        PIPELINE.format(
            rb_size=buffer.round_buffer.max_size,
            rb_tokens=buffer.round_buffer.max_tokens,
            hb_size=buffer.hybrid_buffer.max_size,
        )
    )
    out.print(stages_table(report["stages"]))
    out.print("[dim]'rounds in storage' and 'messages in SQLite' count every user of this data directory.[/]\n")
    out.print("[bold]Questions answered from memory[/] (answers come from different sessions):")
    out.print(
        f"[dim][green]✓[/] the expected answer is the top hit, [yellow]~[/] it is among the top {TOP_K} "
        "but not first, ✗ it is not among them.[/]"
    )
    for answer in report["answers"]:
        mark = "[green]✓[/]" if answer["found_in_top_hit"] else ("[yellow]~[/]" if answer["found_in_results"] else "✗")
        out.print(
            results_table(
                answer["results"],
                title=f"{mark} {answer['question']}  [dim](expected: {answer['expected']})[/]",
                width=out.console.width,
            )
        )
    history = report["history"]
    title = f"History of session {history['session_id']} (user {report['user_id']})"
    out.print(messages_table(history["messages"], title=title))
    out.print(stats_table(report["stats"]))
    user, session = report["user_id"], history["session_id"]
    question = sample["questions"][1]["question"]
    where = f" --data-dir {ctx.args.data_dir}" if getattr(ctx.args, "data_dir", None) else ""
    out.print(
        Panel(
            f'memfuse-memory query "{question}" --user {user}{where}\n'
            f"memfuse-memory history {session} --user {user}{where}\n"
            f"memfuse-memory stats{where}\n"
            f"memfuse-memory export --user {user} -o demo.jsonl{where}",
            title=f"Done in {timings['total_seconds']:.1f} s. Try next",
            title_align="left",
            border_style="green",
        )
    )
