"""The ``memfuse-memory`` command line: argument parsing, dispatch and error reporting."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from memfuse_memory import __version__
from memfuse_memory.cli import commands, demo, serve
from memfuse_memory.cli.context import Context, ServiceFactory, default_factory
from memfuse_memory.cli.errors import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CliError,
)
from memfuse_memory.cli.output import Output
from memfuse_memory.errors import ConfigError, DataDirError, InvalidInputError, MemFuseError

Handler = Callable[[Context], int]

EPILOG = """\
exit codes: 0 ok, 1 runtime failure (storage, embedding), 2 bad usage or input (also a data directory
that is a file, cannot be created, or holds no memory for a command that only reads), 3 bad configuration
start with:  memfuse-memory demo
"""


def exit_code_for(error: BaseException) -> int:
    """The exit code of an error: input, usage and an unusable data directory 2, configuration 3,
    anything else 1."""
    if isinstance(error, CliError):
        return error.exit_code
    if isinstance(error, ConfigError):
        return EXIT_CONFIG
    if isinstance(error, InvalidInputError | DataDirError):
        return EXIT_USAGE
    return EXIT_FAILURE


def _common(suppress: bool) -> argparse.ArgumentParser:
    """Options every command takes; subcommands use SUPPRESS so a value given before them survives."""
    default = argparse.SUPPRESS if suppress else None
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument("--data-dir", metavar="DIR", default=default, help="memory folder (default: ./memfuse_data)")
    group.add_argument("--config", metavar="FILE", default=default, help="YAML config (default: built-in defaults)")
    group.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS if suppress else False, help="machine-readable JSON"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used to render ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="memfuse-memory",
        description="Durable, buffered conversation memory: ingest conversations, query them, inspect the buffers.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common(False)],
    )
    parser.add_argument("--version", action="version", version=f"memfuse-memory {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = [_common(True)]

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text, parents=common)
        command.set_defaults(handler=handler)
        return command

    cmd = add("demo", demo.run, "ingest a sample conversation, watch the buffers, ask questions")
    cmd.add_argument("--user", default=demo.DEMO_USER, help="user of the sample (its sessions are reset each run)")

    cmd = add("ingest", commands.ingest, "load conversations from a JSON or JSONL file")
    cmd.add_argument("file", help="JSON/JSONL: our messages, OpenAI 'messages' arrays or LangChain message dicts")
    cmd.add_argument("--user", default="default", help="user of records that name none (default: default)")
    cmd.add_argument("--session", help="session of records that name none (default: the file name)")
    cmd.add_argument(
        "--allow-duplicates",
        action="store_true",
        help="store messages again that an earlier run stored (default: skip them, by id or content hash)",
    )
    cmd.add_argument("--agent", help="agent of records that name none")

    cmd = add("query", commands.query, "search a user's memory")
    cmd.add_argument("text", help="what to look for")
    cmd.add_argument("--user", default="default", help="whose memory (default: default)")
    cmd.add_argument("--session", help="only this session")
    cmd.add_argument("--agent", help="only this agent")
    cmd.add_argument("--top-k", type=int, default=10, metavar="N", help="results wanted (default 10)")
    cmd.add_argument("--sort-by", choices=["score", "timestamp"], help="sort key (default from config: score)")
    cmd.add_argument("--order", choices=["asc", "desc"], help="sort order (default from config: desc)")
    cmd.add_argument("--since", metavar="TIME", help="only messages at or after this ISO 8601 time")
    cmd.add_argument("--until", metavar="TIME", help="only messages at or before this ISO 8601 time")
    cmd.add_argument(
        "--reference-time", metavar="TIME", help="ISO 8601 time that 'yesterday', 'last week' are read against (now)"
    )
    cmd.add_argument("--filter", action="append", metavar="KEY=VALUE", help="metadata must match (repeatable)")
    cmd.add_argument("--min-score", type=float, metavar="S", help="leave out hits scoring below S (0 to 1)")

    cmd = add("history", commands.history, "print a session's messages in order")
    cmd.add_argument("session", help="session id")
    cmd.add_argument("--user", default="default", help="whose session (default: default)")
    cmd.add_argument("--limit", type=int, metavar="N", help="only the latest N messages")
    cmd.add_argument("--order", choices=["asc", "desc"], default="asc", help="oldest first (asc, default) or newest")
    cmd.add_argument("--buffer-only", action="store_true", help="only messages not yet flushed to storage")

    add("stats", commands.stats, "counters and health of every buffer and store")

    cmd = add("export", commands.export, "write messages as lossless JSONL (ids, times, metadata, rounds)")
    cmd.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    cmd.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    chosen = cmd.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--user", help="this user's messages")
    chosen.add_argument("--all-users", action="store_true", help="every user's messages")
    cmd.add_argument("--session", help="only this session")

    cmd = add("import", commands.import_, "load a file written by 'export' (same ids, times and rounds)")
    cmd.add_argument("file", help="JSONL written by 'memfuse-memory export'")
    cmd.add_argument("--skip-existing", action="store_true", help="skip rounds whose messages are already stored")

    cmd = add("forget", commands.forget, "permanently delete a user's memory or one session")
    cmd.add_argument("--user", help="user to delete (with --session: the session's user)")
    cmd.add_argument("--session", help="only this session (user 'default' unless --user)")
    cmd.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    cmd = add("serve", serve.run, "run the HTTP API (MemFuse v1 compatible) until SIGTERM or Ctrl-C")
    cmd.add_argument("--host", help="interface to listen on (default from config: 127.0.0.1)")
    cmd.add_argument("--port", type=int, help="port to listen on (default from config: 8765)")
    cmd.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level",
    )

    config = sub.add_parser("config", help="show or validate configuration", parents=common)
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = config_sub.add_parser("show", help="print the effective configuration", parents=common)
    show.add_argument(
        "--defaults", action="store_true", help="print the packaged default config file, with its comments"
    )
    show.set_defaults(handler=commands.config_show)
    validate = config_sub.add_parser("validate", help="check a YAML config file", parents=common)
    validate.add_argument("file", help="YAML file to check")
    validate.set_defaults(handler=commands.config_validate)
    return parser


def main(argv: Sequence[str] | None = None, *, service_factory: ServiceFactory | None = None) -> int:
    """Run one command and return its exit code; ``service_factory`` lets tests inject a service."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help, --version or a usage error (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    out = Output(json_mode=bool(getattr(args, "json", False)))
    ctx = Context(args, out, service_factory or default_factory)
    try:
        return int(args.handler(ctx))
    except KeyboardInterrupt:
        out.errors.print("interrupted", markup=False)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        sys.stderr.close()
        return EXIT_FAILURE
    except (CliError, MemFuseError) as exc:
        code = exit_code_for(exc)
        if out.json_mode:
            out.json({"error": {"type": type(exc).__name__, "message": str(exc), "exit_code": code}})
        out.errors.print(f"error: {exc}", markup=False, soft_wrap=True)
        return code


def run() -> None:
    """Console-script entry point: exit with ``main``'s code."""
    sys.exit(main())
