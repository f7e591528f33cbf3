"""Command-line errors and exit codes (the library's own errors are mapped in ``app``)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1  # storage, embedding or another runtime failure
EXIT_USAGE = 2  # bad command line or bad input (missing file, bad JSON, invalid messages)
EXIT_CONFIG = 3  # invalid configuration file or value
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A failure the command line reports as one line and an exit code."""

    exit_code = EXIT_FAILURE


class InputFileError(CliError):
    """An input file is missing, unreadable, not JSON, or not in a supported shape."""

    exit_code = EXIT_USAGE


class UsageError(CliError):
    """Arguments that parse but make no sense together (e.g. ``forget`` without a target)."""

    exit_code = EXIT_USAGE
