"""``memfuse-memory serve``: the HTTP gateway the MemFuse SDK talks to."""

from __future__ import annotations

from memfuse_memory.cli.context import Context, quiet_model_loading
from memfuse_memory.cli.errors import EXIT_FAILURE, EXIT_OK


def run(ctx: Context) -> int:
    """Serve until SIGTERM or Ctrl-C; the engine is flushed and closed on the way out."""
    from memfuse_memory.server.runner import serve
    from memfuse_memory.server.settings import resolve_settings

    args = ctx.args
    settings = resolve_settings(ctx.config, host=args.host, port=args.port)
    quiet_model_loading()
    ctx.out.errors.print(
        f"memfuse-memory serving {ctx.data_dir} on http://{settings.host}:{settings.port} "
        f"(API keys {'required' if settings.require_api_key else 'not required'}; docs at /docs)",
        markup=False,
        soft_wrap=True,
    )
    if not serve(ctx.config, settings, log_level=args.log_level):
        ctx.out.errors.print("error: the server did not start (see the log above)", markup=False)
        return EXIT_FAILURE
    return EXIT_OK
