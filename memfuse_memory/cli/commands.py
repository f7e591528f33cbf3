"""The command handlers except ``demo``: each takes a :class:`Context` and returns an exit code."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from memfuse_memory.blocking import BlockingBufferService
from memfuse_memory.cli import archive, dedupe, stored
from memfuse_memory.cli.context import Context
from memfuse_memory.cli.errors import EXIT_OK, CliError, InputFileError, UsageError
from memfuse_memory.cli.formats import Conversation, Defaults, read_conversations
from memfuse_memory.cli.output import messages_table, results_table, stats_table
from memfuse_memory.config import DEFAULT_CONFIG_PATH, LimitsConfig, load_config
from memfuse_memory.errors import ConfigError, InvalidInputError, MemFuseError
from memfuse_memory.models import IdKey, Scope
from memfuse_memory.validation import check_id, validate_round

BATCH_ROUNDS = 100
PROGRESS_FROM_ROUNDS = 50
T = TypeVar("T")


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


@contextmanager
def progress_bar(ctx: Context, total: int, label: str) -> Iterator[Progress | None]:
    """A rich progress bar on stderr for long imports (hidden in JSON mode and for short files)."""
    if ctx.out.json_mode or total < PROGRESS_FROM_ROUNDS or not ctx.out.errors.is_terminal:
        yield None
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=ctx.out.errors,
        transient=True,
    )
    with bar:
        bar.add_task(label, total=total)
        yield bar


def flush_with_status(ctx: Context, service: BlockingBufferService) -> None:
    """``flush_all`` with a spinner on a terminal: embedding is the slow part of a big import."""
    if ctx.out.json_mode or not ctx.out.errors.is_terminal:
        service.flush_all()
        return
    with ctx.out.errors.status("embedding and storing…"):
        service.flush_all()


def _advance(bar: Progress | None, count: int) -> None:
    if bar is not None:
        bar.advance(bar.task_ids[0], count)


def partial_write(error: MemFuseError, written: int, total: int) -> CliError:
    """A write error that also says how much of the file was stored before it."""
    from memfuse_memory.cli.app import exit_code_for

    failure = CliError(f"{error} ({written} of {total} rounds were stored before this error)")
    failure.exit_code = exit_code_for(error)
    return failure


# -- ingest ---------------------------------------------------------------------------------


def validate_conversations(conversations: Sequence[Conversation], limits: LimitsConfig) -> None:
    """Validate every round as the service will, so a bad file writes nothing."""
    seen: set[IdKey] = set()  # ids are unique per user
    for conversation in conversations:
        try:
            scope = Scope(
                user_id=check_id(conversation.user_id, "user_id", limits),
                session_id=check_id(conversation.session_id, "session_id", limits),
                agent_id=None if conversation.agent_id is None else check_id(conversation.agent_id, "agent_id", limits),
            )
            for index, round_ in enumerate(conversation.rounds):
                for message in validate_round(round_, scope, limits).messages:
                    if message.key in seen:
                        raise InvalidInputError(f"round {index}: message id {message.id!r} appears twice in the file")
                    seen.add(message.key)
        except InvalidInputError as exc:
            raise InputFileError(f"{conversation.source}: {exc}") from exc


def ingest(ctx: Context) -> int:
    """Load conversations from a JSON/JSONL file into memory and print a summary."""
    args = ctx.args
    path = Path(args.file)
    conversations = read_conversations(path, Defaults(args.user, args.session, args.agent))
    validate_conversations(conversations, ctx.config.limits)
    skipped = 0
    if not args.allow_duplicates:
        dedupe.give_content_ids(conversations)
        keys = [IdKey(c.user_id, m["id"]) for c in conversations for r in c.rounds for m in r]
        skipped = dedupe.drop_stored(conversations, dedupe.stored_ids(ctx.config, keys))
        conversations = [c for c in conversations if c.rounds]
    total_rounds = sum(len(c.rounds) for c in conversations)
    written = 0
    with ctx.service(needs_model=total_rounds > 0) as service:
        started = time.perf_counter()
        with progress_bar(ctx, total_rounds, f"ingesting {path.name}") as bar:
            try:
                for conversation in conversations:
                    for part in chunked(conversation.rounds, BATCH_ROUNDS):
                        service.add_batch(
                            list(part),
                            conversation.session_id,
                            user_id=conversation.user_id,
                            agent_id=conversation.agent_id,
                        )
                        written += len(part)
                        _advance(bar, len(part))
            except MemFuseError as exc:
                raise partial_write(exc, written, total_rounds) from exc
        flush_with_status(ctx, service)
    seconds = round(time.perf_counter() - started, 3)
    sessions = [
        {
            "user_id": c.user_id,
            "session_id": c.session_id,
            "agent_id": c.agent_id,
            "rounds": len(c.rounds),
            "messages": c.message_count,
        }
        for c in conversations
    ]
    summary = {
        "file": str(path),
        "users": sorted({c.user_id for c in conversations}),
        "sessions": sessions,
        "rounds": total_rounds,
        "messages": sum(c.message_count for c in conversations),
        "skipped_messages": skipped,
        "seconds": seconds,
    }
    if ctx.out.json_mode:
        ctx.out.json(summary)
        return EXIT_OK
    table = Table(title=f"Ingested {path.name}", title_justify="left")
    for column in ("user", "session", "rounds", "messages"):
        table.add_column(column, justify="right" if column in {"rounds", "messages"} else "left")
    for row in sessions:
        table.add_row(row["user_id"], row["session_id"], str(row["rounds"]), str(row["messages"]))
    ctx.out.print(table)
    ctx.out.print(
        f"[green]✓[/] {summary['messages']} messages in {total_rounds} rounds, {len(sessions)} session(s), "
        f"{len(summary['users'])} user(s) stored and indexed in {seconds:.1f} s"
        + (f"; skipped {skipped} message(s) already stored (--allow-duplicates stores them again)" if skipped else "")
    )
    return EXIT_OK


# -- query / history / stats -----------------------------------------------------------------


def parse_filters(items: Sequence[str] | None) -> dict[str, Any] | None:
    """``--filter key=value`` pairs as a metadata filter; values are JSON when they parse, else text."""
    if not items:
        return None
    wanted: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--filter expects KEY=VALUE, got {item!r}")
        try:
            wanted[key] = json.loads(raw)
        except json.JSONDecodeError:
            wanted[key] = raw
    return wanted


def query(ctx: Context) -> int:
    """Search a user's memory and print the hits with scores and sources."""
    args = ctx.args
    with ctx.service(existing=True) as service:
        reply = service.query(
            args.text,
            args.top_k,
            user_id=args.user,
            session_id=args.session,
            agent_id=args.agent,
            sort_by=args.sort_by,
            order=args.order,
            metadata_filter=parse_filters(args.filter),
            since=args.since,
            until=args.until,
            min_score=args.min_score,
            reference_time=args.reference_time,
        )
    data = reply["data"]
    if ctx.out.json_mode:
        ctx.out.json(data)
        return EXIT_OK
    if not data["results"]:
        ctx.out.print(f"No memories of user {args.user!r} match {args.text!r}.")
    else:
        title = f"{data['total']} result(s) for {args.text!r}"
        ctx.out.print(results_table(data["results"], title=title, width=ctx.out.console.width))
    if data.get("degraded"):
        ctx.out.print(f"[yellow]degraded answer:[/] {'; '.join(data.get('errors') or [])}")
    return EXIT_OK


def history(ctx: Context) -> int:
    """Print a session's messages in order."""
    args = ctx.args
    with ctx.service(needs_model=False, existing=True) as service:
        reply = service.get_messages_by_session(
            args.session, user_id=args.user, buffer_only=args.buffer_only or None, limit=args.limit, order=args.order
        )
    data = reply["data"]
    if ctx.out.json_mode:
        ctx.out.json(data)
    elif not data["messages"]:
        ctx.out.print(f"Session {args.session!r} of user {args.user!r} has no messages.")
    else:
        ctx.out.print(messages_table(data["messages"], title=f"Session {args.session} (user {args.user})"))
    return EXIT_OK


def stats(ctx: Context) -> int:
    """Print what is stored (users, sessions, pending, disk), then this process's counters."""
    with ctx.service(needs_model=False, existing=True) as service:
        data = service.get_stats()
        data["stored"] = stored.stored_summary(service, ctx.config, data["storage"])
    if ctx.out.json_mode:
        ctx.out.json(data)
    else:
        ctx.out.print(stored.stored_view(data.pop("stored")))
        ctx.out.print(stats_table(data, title="Counters of this process (it just started: mostly zeros)"))
    return EXIT_OK


# -- export / import / forget -----------------------------------------------------------------


def export(ctx: Context) -> int:
    """Write every message in scope as JSONL (to a file or stdout)."""
    args = ctx.args
    counts = {"messages": 0, "rounds": 0, "sessions": 0}
    rounds: set[str] = set()
    sessions: set[tuple[str, str]] = set()
    target = Path(args.output) if args.output else None
    if target is not None and target.exists() and not args.force:
        raise UsageError(f"{target} exists; pass --force to overwrite it")
    with archive.read_store(ctx.config) as store:
        sink = target.open("w", encoding="utf-8") if target is not None else nullcontext(sys.stdout)
        with sink as stream:
            user = None if args.all_users else args.user
            for row in archive.export_rows(store, user_id=user, session_id=args.session):
                stream.write(archive.export_line(row) + "\n")
                counts["messages"] += 1
                rounds.add(row["round_id"])
                sessions.add((row["user_id"], row["session_id"]))
    counts["rounds"], counts["sessions"] = len(rounds), len(sessions)
    summary = f"exported {counts['messages']} messages, {counts['rounds']} rounds, {counts['sessions']} session(s)"
    if target is None:
        ctx.out.note(summary)
    elif ctx.out.json_mode:
        ctx.out.json({"file": str(target), **counts})
    else:
        ctx.out.print(f"[green]✓[/] {summary} to {target}")
    return EXIT_OK


def import_(ctx: Context) -> int:
    """Replay an export file: the same ids, times, metadata, scopes and round grouping."""
    args = ctx.args
    path = Path(args.file)
    rounds = archive.read_archive(path, ctx.config.limits)
    stored = dedupe.stored_ids(ctx.config, [IdKey(r.scope.user_id, m["id"]) for r in rounds for m in r.messages])
    if stored and not args.skip_existing:
        example = min(stored)
        raise InputFileError(
            f"{len(stored)} message(s) of {path} are already stored in {ctx.data_dir} "
            f"(e.g. {example.id!r} of user {example.user_id!r}); nothing was imported. "
            "Pass --skip-existing to import only the rest"
        )
    kept = [r for r in rounds if not any(IdKey(r.scope.user_id, m["id"]) in stored for m in r.messages)]
    skipped = sum(len(r.messages) for r in rounds) - sum(len(r.messages) for r in kept)
    rounds = kept
    written = 0
    with ctx.service(needs_model=bool(rounds)) as service:
        started = time.perf_counter()
        with progress_bar(ctx, len(rounds), f"importing {path.name}") as bar:
            try:
                for batch in archive.batches(rounds, BATCH_ROUNDS):
                    archive.write_batch(service, batch)
                    written += len(batch)
                    _advance(bar, len(batch))
            except MemFuseError as exc:
                raise partial_write(exc, written, len(rounds)) from exc
        flush_with_status(ctx, service)
    summary = {
        "file": str(path),
        "rounds": written,
        "messages": sum(len(r.messages) for r in rounds),
        "skipped_messages": skipped,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if ctx.out.json_mode:
        ctx.out.json(summary)
    else:
        extra = f", skipped {skipped} message(s) already stored" if skipped else ""
        ctx.out.print(f"[green]✓[/] imported {summary['messages']} messages in {written} rounds from {path}{extra}")
    return EXIT_OK


def _confirm(ctx: Context, what: str) -> None:
    if ctx.args.yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"refusing to delete {what} without confirmation; pass --yes")
    answer = input(f"Permanently delete {what}? [y/N] ")
    if answer.strip().lower() not in {"y", "yes"}:
        raise UsageError("cancelled; nothing was deleted")


def forget(ctx: Context) -> int:
    """Hard-delete a user's memory, or one session of it, from every store and buffer."""
    args = ctx.args
    if args.user is None and args.session is None:
        raise UsageError("forget needs --user USER, --session SESSION, or both")
    user = args.user or "default"
    what = f"session {args.session!r} of user {user!r}" if args.session else f"all memory of user {user!r}"
    _confirm(ctx, what)
    with ctx.service(needs_model=False, existing=True) as service:
        if args.session is not None:
            data = service.delete_session(args.session, user_id=user)["data"]
        else:
            data = service.delete_user(user)["data"]
    if ctx.out.json_mode:
        ctx.out.json(data)
    else:
        ctx.out.print(f"[green]✓[/] deleted {what}: {data['deleted_messages']} message(s)")
    return EXIT_OK


# -- config -----------------------------------------------------------------------------------


def config_show(ctx: Context) -> int:
    """Print the effective configuration (defaults, ``--config`` and ``--data-dir`` applied), or
    with ``--defaults`` the packaged default file as it is (a starting point for one's own)."""
    if ctx.args.defaults:
        sys.stdout.write(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))  # as is: no wrapping, no markup
        return EXIT_OK
    data = ctx.config.model_dump(mode="json")
    if ctx.out.json_mode:
        ctx.out.json(data)
    else:
        source = ctx.args.config or "built-in defaults"
        ctx.out.print(f"# effective configuration (from {source})", markup=False)
        ctx.out.print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip(), markup=False)
    return EXIT_OK


def config_validate(ctx: Context) -> int:
    """Check a YAML config file against the schema; exit 3 naming every bad key or value."""
    path = Path(ctx.args.file)
    if not path.is_file():
        raise InputFileError(f"file not found: {path}")
    try:
        load_config(path)
    except ConfigError as exc:
        if str(path) in str(exc):
            raise
        raise ConfigError(f"{path}: {exc}") from exc
    if ctx.out.json_mode:
        ctx.out.json({"file": str(path), "valid": True})
    else:
        ctx.out.print(f"[green]✓[/] {path} is a valid memfuse-memory configuration")
    return EXIT_OK
