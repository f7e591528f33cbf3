"""Request bodies. Unknown fields are ignored (the SDK sends a few it does not need); values are checked,
and a rejected one is named in the 422 answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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


class QueryBody(_Body):
    """The SDK's query, plus our own optional fields (time range, metadata filter, sort)."""

    query: str = Field(min_length=1, max_length=100_000)
    session_id: str | None = None
    agent_id: str | None = None
    top_k: int = Field(5, ge=1, le=1000)
    metadata: dict[str, Any] | None = Field(None, description="Accepted for the SDK; not used.")
    store_type: str | None = Field(None, description="Accepted for the SDK; not used.")
    include_messages: bool = True
    include_knowledge: bool = True
    since: str | None = Field(None, description="Only messages at or after this ISO 8601 time.")
    until: str | None = Field(None, description="Only messages at or before this ISO 8601 time.")
    metadata_filter: dict[str, Any] | None = Field(None, description="Message metadata must hold these values.")
    sort_by: Literal["score", "timestamp"] | None = None
    order: Literal["asc", "desc"] | None = None


class KnowledgeBody(_Body):
    knowledge: list[str] = Field(min_length=1)


class KnowledgeIdsBody(_Body):
    knowledge_ids: list[str] = Field(min_length=1, max_length=10_000)


class UpdateKnowledgeBody(KnowledgeIdsBody):
    new_knowledge: list[str] = Field(min_length=1)


class ApiKeyBody(_Body):
    name: str | None = Field(None, max_length=256)
    key: str | None = Field(None, min_length=16, max_length=512, description="Your own key; generated if absent.")
    permissions: dict[str, Any] | None = None
    expires_at: str | None = Field(None, description="ISO 8601 time after which the key is refused.")
