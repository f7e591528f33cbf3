"""DSN handling: the password never reaches a log line, an error message or the stats."""

from __future__ import annotations

import re

_URI_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@?#\s\"']*:)(?P<secret>[^@/?#\s]*)(?P<tail>@)")
_PARAM_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|[^\s&]*)", re.IGNORECASE)


def redact_dsn(text: str) -> str:
    """``text`` (a DSN, or an error message quoting one) with every password replaced by ``***``."""
    text = _URI_PASSWORD.sub(lambda m: m["head"] + "***" + m["tail"], text)
    return _PARAM_PASSWORD.sub(lambda m: m["head"] + "***", text)


def quote_ident(name: str) -> str:
    """A schema name as a quoted SQL identifier (the config already restricts its characters)."""
    return '"' + name.replace('"', '""') + '"'
