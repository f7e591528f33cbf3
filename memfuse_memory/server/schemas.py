"""Request bodies. Unknown fields are ignored (the SDK sends a few it does not need); values are checked,
and a rejected one is named in the 422 answer."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)

from memfuse_memory.validation import parse_time

Name = Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f/\\]+$")


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class NamedBody(_Body):
    name: str = Name
    description: str | None = Field(None, max_length=10_000)


class UpdateNamedBody(_Body):
    name: str | None = Field(None, min_length=1, max_length=256, pattern=r"^[^\x00-\x1f/\\]+$")
    description: str | None = Field(None, max_length=10_000)


class SessionBody(_Body):
    user_id: str = Field(min_length=1, max_length=256)
    agent_id: str = Field(min_length=1, max_length=256)
    name: str | None = Field(None, min_length=1, max_length=256, pattern=r"^[^\x00-\x1f/\\]+$")


class RenameSessionBody(_Body):
    name: str = Name


class MessagesBody(_Body):
    messages: list[dict[str, Any]] = Field(min_length=1)


class MessageIdsBody(_Body):
    message_ids: list[str] = Field(min_length=1, max_length=10_000)


class UpdateMessagesBody(MessageIdsBody):
    new_messages: list[dict[str, Any]] = Field(min_length=1)


def _moment(value: Any, info: ValidationInfo) -> Any:
    """A time field must be what the engine reads as a time (ISO 8601 or epoch seconds); the 422 names the
    field. ``until`` must not come before ``since``."""
    if value is None:
        return None
    moment = parse_time(value, str(info.field_name))
    since = info.data.get("since")
    if info.field_name == "until" and since is not None and parse_time(since, "since") > moment:
        raise ValueError("until must not be earlier than since")
    return value


Moment = Annotated[
    Any,
    AfterValidator(_moment),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}, {"type": "null"}]}),
]


class SearchBody(_Body):
    """A query's text and our own optional fields; every query route takes them."""

    query: str = Field(min_length=1, max_length=100_000)
    top_k: int = Field(5, ge=1, le=1000)
    since: Moment = Field(None, description="Only messages at or after this time (ISO 8601, or epoch seconds).")
    until: Moment = Field(None, description="Only messages at or before this time (ISO 8601, or epoch seconds).")
    metadata_filter: dict[str, Any] | None = Field(
        None, description="Only messages whose metadata holds every one of these key: value pairs."
    )
    sort_by: Literal["score", "timestamp"] | None = Field(None, description="Default: the config's (score).")
    order: Literal["asc", "desc"] | None = Field(None, description="Default: the config's (desc).")
    min_score: float | None = Field(
        None, ge=0.0, le=1.0, description="Drop results scoring below this (scores are in [0, 1] per query)."
    )
    reference_time: Moment = Field(
        None,
        description="The 'now' that time words in the query ('last Saturday', 'in May') are read against; "
        "default: the current time. Favours messages of that time softly; never a filter.",
    )


class QueryBody(SearchBody):
    """The SDK's user-level query (``session_id`` labels results, ``agent_id`` filters), plus ours."""

    session_id: str | None = None
    agent_id: str | None = None
    metadata: dict[str, Any] | None = Field(None, description="Accepted for the SDK; not used.")
    store_type: str | None = Field(None, description="Accepted for the SDK; not used.")
    include_messages: bool = True
    include_knowledge: bool = True


class KnowledgeBody(_Body):
    knowledge: list[str] = Field(min_length=1)


class KnowledgeIdsBody(_Body):
    knowledge_ids: list[str] = Field(min_length=1, max_length=10_000)


class UpdateKnowledgeBody(KnowledgeIdsBody):
    new_knowledge: list[str] = Field(min_length=1)


class KeyPermissions(BaseModel):
    """What a per-user key may do with its user's data; at least one of the two."""

    model_config = ConfigDict(extra="forbid")

    read: StrictBool = Field(False, description="GET routes, reading messages and knowledge by id, the queries.")
    write: StrictBool = Field(False, description="Adding, changing and deleting anything; managing keys.")

    @model_validator(mode="after")
    def _some(self) -> KeyPermissions:
        if not (self.read or self.write):
            raise ValueError("permissions must grant read, write or both")
        return self


class ApiKeyBody(_Body):
    name: str | None = Field(None, max_length=256)
    key: str | None = Field(None, min_length=16, max_length=512, description="Your own key; generated if absent.")
    permissions: KeyPermissions | None = Field(
        None, description="Default: read and write. A key never grants more than the key that creates it."
    )
    expires_at: str | None = Field(None, description="ISO 8601 time after which the key is refused.")
