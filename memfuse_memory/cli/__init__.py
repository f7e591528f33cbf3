"""The ``memfuse-memory`` command line (``python -m memfuse_memory``); start with ``memfuse-memory demo``."""

from memfuse_memory.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
