"""Validation: every check of what callers pass, in one place, before anything is written.

Bad input raises a typed error naming the problem (:class:`InvalidMessageError`,
:class:`InvalidQueryError`, :class:`InvalidScopeError`, :class:`InvalidInputError`).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from memfuse_memory.config import LimitsConfig, QueryConfig
from memfuse_memory.errors import InvalidInputError, InvalidMessageError, InvalidQueryError, InvalidScopeError
from memfuse_memory.models import QueryRequest, Role, Round, Scope, StoredMessage, new_id, to_micros
from memfuse_memory.ranking.time_expressions import mentions_time

DEFAULT_SESSION = "default"
MAX_METADATA_DEPTH = 100
_FORBIDDEN_ID = re.compile(r"[\x00-\x1f\x7f/\\]")
# format characters (zero-width, BOM, bidi controls such as U+202E) and line/paragraph separators:
# they would make distinct ids look identical; ids are compared exactly, without normalisation
_INVISIBLE = frozenset({"Cf", "Zl", "Zp"})
MAX_COUNT = 1_000_000  # the largest top_k or limit accepted (far above what any store returns at once)
MAX_TIMEOUT_SECONDS = 7 * 86_400.0  # the longest finite timeout accepted (None means no deadline)


def check_count(value: Any, what: str, *, optional: bool = False) -> int | None:
    """A positive int up to :data:`MAX_COUNT` (or None when ``optional``); bools are not counts."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_COUNT:
        allowed = " or None" if optional else ""
        raise InvalidQueryError(f"{what} must be an integer from 1 to {MAX_COUNT}{allowed}, got {value!r}")
    return value


def check_timeout(value: Any, what: str = "timeout") -> float | None:
    """None (no deadline) or a finite number of seconds from 0 to :data:`MAX_TIMEOUT_SECONDS`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"{what} must be a number of seconds or None, not {type(value).__name__}")
    if not (math.isfinite(value) and 0 <= value <= MAX_TIMEOUT_SECONDS):
        raise InvalidInputError(f"{what} must be from 0 to {MAX_TIMEOUT_SECONDS:g} seconds or None, got {value!r}")
    return float(value)


def parse_time(value: Any, what: str) -> datetime:
    """Accept an aware/naive datetime (naive = UTC), an ISO 8601 string or epoch seconds."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, bool):
        raise ValueError(f"{what} must be a datetime, ISO 8601 string or epoch seconds, not a bool")
    elif isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"{what} must be finite")
        try:
            moment = datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(f"{what} is out of range: {value!r}") from exc
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        except ValueError as exc:
            raise ValueError(f"{what} is not an ISO 8601 time: {value!r}") from exc
    else:
        raise ValueError(f"{what} must be a datetime, ISO 8601 string or epoch seconds, not {type(value).__name__}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"{what} is out of range in UTC: {value!r}") from exc


def check_id(value: Any, what: str, limits: LimitsConfig, error: type[Exception] = InvalidScopeError) -> str:
    """Validate a user/agent/session/message id: a short printable string that cannot name a path."""
    if not isinstance(value, str):
        raise error(f"{what} must be a string, not {type(value).__name__}")
    if not value or value.strip() != value or value in {".", ".."}:
        raise error(f"{what} must be non-empty, without surrounding spaces, and not '.' or '..': {value!r}")
    if len(value) > limits.max_id_chars:
        raise error(f"{what} is longer than {limits.max_id_chars} characters")
    if _FORBIDDEN_ID.search(value):
        raise error(f"{what} must not contain path separators or control characters: {value!r}")
    if any(unicodedata.category(char) in _INVISIBLE for char in value):
        raise error(f"{what} must not contain invisible or bidi-control characters: {value!r}")
    if not _encodable(value):
        raise error(f"{what} is not valid Unicode (lone surrogate): {value!r}")
    return value


def json_size_problem(value: Any, max_bytes: int, depth_limit: int = MAX_METADATA_DEPTH) -> str | None:
    """Why ``value`` cannot be accepted as JSON of at most ``max_bytes`` (None when it can).

    The walk is iterative (any depth is safe) and counts a lower bound of the JSON size as it
    goes, stopping as soon as it passes ``max_bytes``: its time is linear in the object's size
    and bounded by ``max_bytes``, even when shared references would make the tree exponential
    (``[n, n]`` nested 40 levels). Depth is bounded because JSON encoding and decoding recurse.
    """
    budget = max_bytes
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        budget -= 1
        if isinstance(item, str):
            budget -= len(item)
        elif isinstance(item, Mapping | list | tuple):
            if depth > depth_limit:
                return f"nests deeper than {depth_limit} levels"
            budget -= len(item)
            if budget < 0:
                break
            if isinstance(item, Mapping):
                budget -= sum(len(key) if isinstance(key, str) else 1 for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)
        if budget < 0:
            break
    return f"is larger than {max_bytes} bytes as JSON" if budget < 0 else None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class MessageIn(BaseModel):
    """A message as callers give it; validated, then stored as :class:`StoredMessage`."""

    model_config = ConfigDict(extra="forbid", strict=False)

    role: Role
    content: str
    id: str | None = None
    name: str | None = None
    created_at: datetime | str | float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("content", mode="before")
    @classmethod
    def _content_is_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError(f"content must be a string, not {type(value).__name__}")
        return value

    @field_validator("created_at", mode="before")
    @classmethod
    def _time_is_not_bool(cls, value: Any) -> Any:
        # one rule with since/until (parse_time): True is not the epoch second 1
        if isinstance(value, bool):
            raise ValueError("created_at must be a datetime, ISO 8601 string or epoch seconds, not a bool")
        return value


def validate_round(
    messages: Any,
    scope: Scope,
    limits: LimitsConfig,
    *,
    now: datetime | None = None,
    round_id: str | None = None,
) -> Round:
    """Validate one ``messages`` list into a :class:`Round`; raise InvalidMessageError naming the problem."""
    if isinstance(messages, Mapping | BaseModel) or not isinstance(messages, Sequence) or isinstance(messages, str):
        raise InvalidMessageError(f"messages must be a list of messages, not {type(messages).__name__}")
    if not messages:
        raise InvalidMessageError("messages must not be empty")
    if len(messages) > limits.max_messages_per_round:
        raise InvalidMessageError(
            f"a round holds at most {limits.max_messages_per_round} messages, got {len(messages)}"
        )
    stamp = now or datetime.now(UTC)
    rid = round_id or new_id()
    stored: list[StoredMessage] = []
    seen: set[str] = set()
    for index, raw in enumerate(messages):
        where = f"messages[{index}]"
        data = raw.model_dump() if isinstance(raw, BaseModel) else raw
        if not isinstance(data, Mapping):
            raise InvalidMessageError(f"{where} must be a dict with role and content, not {type(raw).__name__}")
        try:
            message = MessageIn.model_validate(dict(data))
        except ValidationError as exc:
            detail = "; ".join(f"{where}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
            raise InvalidMessageError(detail) from exc
        content = message.content
        if len(content) > limits.max_content_chars:
            raise InvalidMessageError(f"{where}.content is longer than {limits.max_content_chars} characters")
        if "\x00" in content or not _encodable(content):
            raise InvalidMessageError(f"{where}.content holds a NUL character or invalid Unicode")
        if message.name is not None:
            check_id(message.name, f"{where}.name", limits, InvalidMessageError)
        message_id = (
            new_id() if message.id is None else check_id(message.id, f"{where}.id", limits, InvalidMessageError)
        )
        if message_id in seen:
            raise InvalidMessageError(f"{where}.id {message_id!r} appears twice in one round")
        seen.add(message_id)
        problem = json_size_problem(message.metadata, limits.max_metadata_bytes)
        if problem is not None:
            raise InvalidMessageError(f"{where}.metadata {problem}")
        try:
            created = stamp if message.created_at is None else parse_time(message.created_at, f"{where}.created_at")
            meta_json = json.dumps(message.metadata, allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise InvalidMessageError(f"{where}: {exc}") from exc
        if not _encodable(meta_json):
            raise InvalidMessageError(f"{where}.metadata holds invalid Unicode")
        if len(meta_json.encode("utf-8")) > limits.max_metadata_bytes:
            raise InvalidMessageError(f"{where}.metadata is larger than {limits.max_metadata_bytes} bytes as JSON")
        stored.append(
            StoredMessage(
                id=message_id,
                role=message.role,
                content=content,
                name=message.name,
                created_at=created,
                metadata=json.loads(meta_json),
                scope=scope,
                round_id=rid,
            )
        )
    return Round(id=rid, scope=scope, messages=stored)


def validate_query(query: Any, top_k: Any, *, limits: LimitsConfig, **options: Any) -> QueryRequest:
    """Check every query argument; raise InvalidQueryError or InvalidScopeError naming the bad one.

    ``options`` are those of :func:`validate_query_options`.
    """
    if not isinstance(query, str) or not query.strip():
        raise InvalidQueryError("query must be a non-empty string")
    if len(query) > limits.max_content_chars or "\x00" in query or not _encodable(query):
        raise InvalidQueryError("query is too long, or holds a NUL character or invalid Unicode")
    checked = validate_query_options(top_k, limits=limits, **options)
    if checked["reference_time"] is None and mentions_time(query):
        # "now", to the hour, so a cached "yesterday" is not answered again tomorrow
        checked["reference_time"] = to_micros(datetime.now(UTC).replace(minute=0, second=0, microsecond=0))
    return QueryRequest(text=query, **checked)


def validate_query_options(
    top_k: Any,
    *,
    user_id: Any,
    session_id: Any = None,
    agent_id: Any = None,
    sort_by: Any = None,
    order: Any = None,
    metadata_filter: Any = None,
    since: Any = None,
    until: Any = None,
    min_score: Any = None,
    reference_time: Any = None,
    limits: LimitsConfig,
    defaults: QueryConfig | None = None,
) -> dict[str, Any]:
    """Check the options of a query (all but its text) into :class:`QueryRequest` fields;
    ``sort_by`` / ``order`` None take ``defaults`` (the configured ones)."""
    if defaults is not None:
        sort_by = defaults.default_sort_by if sort_by is None else sort_by
        order = defaults.default_order if order is None else order
    check_count(top_k, "top_k")
    if sort_by not in ("score", "timestamp"):
        raise InvalidQueryError(f"sort_by must be 'score' or 'timestamp', got {sort_by!r}")
    if order not in ("asc", "desc"):
        raise InvalidQueryError(f"order must be 'asc' or 'desc', got {order!r}")
    check_id(user_id, "user_id", limits)
    if session_id is not None:
        check_id(session_id, "session_id", limits)
    if agent_id is not None:
        check_id(agent_id, "agent_id", limits)
    filter_json: str | None = None
    if metadata_filter is not None:
        if not isinstance(metadata_filter, Mapping):
            raise InvalidQueryError(
                f"metadata_filter must be a dict of key: value, not {type(metadata_filter).__name__}"
            )
        problem = json_size_problem(metadata_filter, limits.max_metadata_bytes)
        if problem is not None:
            raise InvalidQueryError(f"metadata_filter {problem}")
        try:
            filter_json = (
                json.dumps(dict(metadata_filter), sort_keys=True, allow_nan=False) if metadata_filter else None
            )
        except (TypeError, ValueError) as exc:
            raise InvalidQueryError(f"metadata_filter must be JSON values: {exc}") from exc
        if filter_json is not None and len(filter_json) > limits.max_metadata_bytes:
            raise InvalidQueryError(f"metadata_filter is larger than {limits.max_metadata_bytes} bytes as JSON")
    try:
        since_us = None if since is None else to_micros(parse_time(since, "since"))
        until_us = None if until is None else to_micros(parse_time(until, "until"))
        reference_us = None if reference_time is None else to_micros(parse_time(reference_time, "reference_time"))
    except ValueError as exc:
        raise InvalidQueryError(str(exc)) from exc
    if since_us is not None and until_us is not None and since_us > until_us:
        raise InvalidQueryError("since must not be later than until")
    if min_score is not None and (
        isinstance(min_score, bool) or not isinstance(min_score, int | float) or not 0.0 <= min_score <= 1.0
    ):
        raise InvalidQueryError(f"min_score must be a number from 0 to 1, got {min_score!r}")
    return {
        "top_k": top_k,
        "user_id": user_id,
        "session_id": session_id,
        "agent_id": agent_id,
        "sort_by": sort_by,
        "order": order,
        "metadata_filter": filter_json,
        "since": since_us,
        "until": until_us,
        "min_score": 0.0 if min_score is None else float(min_score),
        "reference_time": reference_us,
    }


def scope_of(user_id: Any, session_id: Any, agent_id: Any, limits: LimitsConfig) -> Scope:
    """The scope of a write or session read; ``session_id`` None means :data:`DEFAULT_SESSION`."""
    session = DEFAULT_SESSION if session_id is None else check_id(session_id, "session_id", limits)
    agent = None if agent_id is None else check_id(agent_id, "agent_id", limits)
    return Scope(user_id=check_id(user_id, "user_id", limits), session_id=session, agent_id=agent)


def validate_batch(batch: Any, scope: Scope, limits: LimitsConfig, round_ids: Sequence[str] | None) -> list[Round]:
    """Validate the rounds of one ``add_batch``: all of them, before anything is written."""
    if not isinstance(batch, list | tuple) or not batch:
        raise InvalidMessageError("message_batch_list must be a non-empty list of message lists")
    if round_ids is not None:
        if isinstance(round_ids, str) or len(round_ids) != len(batch):
            raise InvalidMessageError("round_ids must be a list with one id per round")
        if len(set(round_ids)) != len(round_ids):
            raise InvalidMessageError("a round id appears twice in one batch")
        for rid in round_ids:
            check_id(rid, "round id", limits, InvalidMessageError)
    rounds = [
        validate_round(messages, scope, limits, round_id=None if round_ids is None else round_ids[n])
        for n, messages in enumerate(batch)
    ]
    ids = [m.id for r in rounds for m in r.messages]
    if len(set(ids)) != len(ids):
        raise InvalidMessageError("a message id appears twice in one batch")
    return rounds


def validate_message_ids(message_ids: Any, limits: LimitsConfig) -> list[str]:
    """A non-empty list of message ids to delete."""
    if isinstance(message_ids, str) or not isinstance(message_ids, list | tuple | set) or not message_ids:
        raise InvalidInputError("message_ids must be a non-empty list of message ids")
    return [check_id(mid, "message id", limits, InvalidInputError) for mid in message_ids]


def validate_updates(message_ids: Any, new_messages: Any, user_id: str, limits: LimitsConfig) -> list[StoredMessage]:
    """The replacements of ``update_messages``: one valid message per distinct id (ids, times,
    sessions and rounds stay what they are in the store)."""
    if isinstance(message_ids, str) or not isinstance(message_ids, list | tuple) or not message_ids:
        raise InvalidInputError("message_ids must be a non-empty list of message ids")
    ids = [check_id(mid, "message id", limits, InvalidInputError) for mid in message_ids]
    if len(set(ids)) != len(ids):
        raise InvalidInputError("a message id appears twice in message_ids")
    if not isinstance(new_messages, list | tuple) or len(new_messages) != len(ids):
        raise InvalidMessageError("new_messages must be a list with one message per message id")
    checked = validate_round(new_messages, Scope(user_id=user_id, session_id=DEFAULT_SESSION), limits)
    return [replace(message, id=mid) for message, mid in zip(checked.messages, ids, strict=True)]


def validate_session_read(limit: Any, order: Any, buffer_only: Any) -> None:
    """The options of ``get_messages_by_session``."""
    check_count(limit, "limit", optional=True)
    if order not in ("asc", "desc"):
        raise InvalidQueryError(f"order must be 'asc' or 'desc', got {order!r}")
    if buffer_only is not None and not isinstance(buffer_only, bool):
        raise InvalidInputError(f"buffer_only must be a bool or None, got {buffer_only!r}")
