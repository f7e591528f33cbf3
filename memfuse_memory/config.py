"""Configuration: pydantic models mirroring ``config/buffer/default.yaml``.

The seed's ``buffer`` section (round_buffer, hybrid_buffer, query) keeps the seed's defaults;
``storage``, ``embedding``, ``retry`` and ``limits`` are ours. Unknown keys and bad values are
rejected with a :class:`~memfuse_memory.errors.ConfigError` that names them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from memfuse_memory.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "BufferConfig",
    "EmbeddingConfig",
    "HybridBufferConfig",
    "LimitsConfig",
    "MemFuseConfig",
    "MessageStoreConfig",
    "QueryConfig",
    "RetryConfig",
    "RoundBufferConfig",
    "ServerConfig",
    "StorageConfig",
    "VectorStoreConfig",
    "load_config",
]

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent / "data" / "default.yaml"
"""The default configuration shipped in the package (``config/buffer/default.yaml`` of the source
tree is the same file, byte for byte; a test keeps them in step)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class RoundBufferConfig(_Section):
    """Per-session token FIFO in front of the HybridBuffer."""

    max_tokens: int = Field(800, ge=1, description="Transfer a session's rounds when their tokens would exceed this.")
    max_size: int = Field(5, ge=1, description="Transfer a session's rounds when their count would exceed this.")
    token_model: str = Field(
        "gpt-4o-mini", min_length=1, description="tiktoken model (or encoding) used to count tokens."
    )


class HybridBufferConfig(_Section):
    """Transferred rounds kept as embedded chunks and as the original rounds until flushed."""

    max_size: int = Field(5, ge=1, description="Rounds held before the oldest are flushed to storage (FIFO).")
    chunk_strategy: Literal["message", "turn", "contextual", "user"] = Field(
        "user",
        description="'message': one chunk per round; 'turn': one vector per message, long messages as overlapping "
        "passages (a message scores by its best passage); 'contextual': like 'turn', short messages given their "
        "preceding turns as context; 'user': user messages alone (long ones as passages), each reply after the "
        "user messages it answers.",
    )
    embedding_model: str = Field(
        "all-MiniLM-L6-v2",
        min_length=1,
        description="'all-MiniLM-L6-v2' (the offline packaged model) or a local sentence-transformers folder.",
    )
    chunk_max_words: int = Field(
        160, ge=8, description="Word budget of one chunk or passage ('turn', 'contextual' and 'user')."
    )
    idle_flush_seconds: float = Field(
        30.0, gt=0, description="Sessions without writes for this long are transferred and flushed to storage."
    )


class QueryConfig(_Section):
    """QueryBuffer: result limits, cache and rank fusion."""

    max_size: int = Field(15, ge=1, description="Most results one query returns, whatever top_k asks.")
    cache_size: int = Field(100, ge=0, description="Entries in the LRU query cache (0 disables it).")
    default_sort_by: Literal["score", "timestamp"] = Field("score", description="Sort key when a query names none.")
    default_order: Literal["asc", "desc"] = Field("desc", description="Sort order when a query names none.")
    fusion: Literal["minmax", "rrf", "zscore"] = Field(
        "minmax",
        description="How keyword and vector rankings are fused: min-max normalised scores, reciprocal ranks, or "
        "scores standardised against each ranking's own candidates (zscore).",
    )
    keyword_weight: float = Field(0.6, ge=0, description="Weight of the keyword (BM25) ranking in fusion.")
    vector_weight: float = Field(0.4, ge=0, description="Weight of the vector (cosine) ranking in fusion.")
    candidate_pool: int = Field(100, ge=1, description="Candidates drawn from each ranking before fusion.")
    embed_pending_limit: int = Field(
        32,
        ge=0,
        description="Buffered chunks not yet embedded that a query embeds itself, so it ranks them by meaning "
        "(their vectors are kept; 0: none, they rank by keyword until the worker embeds them).",
    )
    time_boost_weight: float = Field(
        0.3,
        ge=0,
        description="Share of the best fused score added to candidates whose time fits the query's time words "
        '("last Saturday", "in May 2023", "most recent"); 0 turns the time boost off.',
    )
    frame_word_weight: float = Field(
        0.6,
        ge=0,
        le=1,
        description='Keyword weight of the words of how a question is put ("how many days ago", "I was '
        'wondering", "our previous chat"; 1: weighed like any word).',
    )
    assistant_weight: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Share of its score an assistant (or tool) turn keeps, so the user's own turns rank first, "
        'unless the query asks what the assistant said ("you recommended", "remind me"); 1 turns this off.',
    )


class BufferConfig(_Section):
    """The seed's ``buffer`` section."""

    enabled: bool = Field(True, description="False: every add waits until its round is embedded and stored.")
    round_buffer: RoundBufferConfig = RoundBufferConfig()
    hybrid_buffer: HybridBufferConfig = HybridBufferConfig()
    query: QueryConfig = QueryConfig()


class VectorStoreConfig(_Section):
    """Where chunk vectors live: an embedded Chroma in the data dir, or a Chroma server."""

    mode: Literal["embedded", "server"] = Field(
        "embedded",
        description="'embedded': Chroma in the data dir, one process (PersistentClient); 'server': a Chroma server "
        "(HttpClient) that several processes sharing the data dir use at once.",
    )
    host: str = Field("127.0.0.1", description="Chroma server host (mode 'server').")
    port: int = Field(8000, ge=1, le=65535, description="Chroma server port (mode 'server').")
    request_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="Mode 'server': how long one request may wait for the server before it fails like a "
        "refused one (retried, counted by the circuit breaker; a query then answers degraded).",
    )


class MessageStoreConfig(_Section):
    """Which message store holds the acknowledged messages: SQLite in the data dir, or PostgreSQL."""

    backend: Literal["sqlite", "postgres"] = Field(
        "sqlite",
        description="'sqlite': a file in the data dir (one host); 'postgres': a database shared by replicas on "
        "several hosts (needs the 'postgres' extra).",
    )
    dsn: str = Field(
        "",
        description="Backend 'postgres': a libpq URI (postgresql://user@host:5432/db); the password may come from "
        "the environment (PGPASSWORD, ~/.pgpass) and is never printed.",
    )
    schema_name: str = Field(
        "memfuse",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
        description="Backend 'postgres': the schema holding the tables, created and migrated by the engine.",
    )
    pool_min_size: int = Field(1, ge=0, description="Backend 'postgres': connections kept open.")
    pool_max_size: int = Field(8, ge=1, description="Backend 'postgres': most connections open at once.")
    synchronous_commit: Literal["on", "off"] = Field(
        "on",
        description="Backend 'postgres': 'on' waits for the server's WAL flush before an add returns (survives "
        "a server crash); 'off' survives a replica crash but not a server crash (like sqlite_synchronous NORMAL).",
    )
    connect_timeout_seconds: float = Field(
        5.0,
        gt=0,
        description="Backend 'postgres': how long an operation waits for a connection before it fails with "
        "StorageUnavailableError (an add during an outage fails this fast).",
    )


class StorageConfig(_Section):
    """Durable stores: the message store (SQLite or PostgreSQL, with its keyword index) and the vector store."""

    data_dir: Path = Field(Path("memfuse_data"), description="Folder of the message store and embedded Chroma.")
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
        "NORMAL", description="NORMAL survives a process crash; FULL also survives power loss (slower add)."
    )
    busy_timeout_ms: int = Field(
        5000,
        ge=0,
        description="How long SQLite waits on a lock held by another process's writer (writers of one process "
        "take turns on a lock of their own first).",
    )
    vector_store: VectorStoreConfig = VectorStoreConfig()
    message_store: MessageStoreConfig = MessageStoreConfig()


class EmbeddingConfig(_Section):
    """The embedding runtime and the background embedding worker."""

    batch_size: int = Field(32, ge=1, description="Chunks embedded per model call.")
    backend: Literal["onnx", "torch"] = Field(
        "onnx",
        description="'onnx': ONNX Runtime on the model exported once to the cache (no torch import; falls back "
        "to 'torch' with a logged warning if it cannot load); 'torch': sentence-transformers on PyTorch.",
    )
    cache_dir: Path | None = Field(
        None,
        description="Where the ONNX export is cached; null: $XDG_CACHE_HOME/memfuse-memory (~/.cache/memfuse-memory).",
    )
    intra_op_threads: int = Field(
        1,
        ge=0,
        description="ONNX Runtime threads for one embedding call; 1: each call runs on its caller's thread, so "
        "the worker's lower priority covers its embedding and a query embeds beside it; 0: the cores available, "
        "at most 4 (one call is faster on an idle machine).",
    )
    worker_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="Linux: the index worker thread raises its nice value by this much, so adds, queries and "
        "PostgreSQL get the cores first while it embeds; 0: same priority as the process.",
    )


class RetryConfig(_Section):
    """Retry with exponential backoff and a circuit breaker for storage and embedding."""

    max_attempts: int = Field(3, ge=1, description="Tries of one storage write or embedding batch before it waits.")
    initial_backoff_seconds: float = Field(0.05, gt=0, description="First backoff; doubles on each failure.")
    max_backoff_seconds: float = Field(5.0, gt=0, description="Cap of the backoff.")
    breaker_failure_threshold: int = Field(5, ge=1, description="Consecutive failures that open the breaker.")
    breaker_reset_seconds: float = Field(10.0, gt=0, description="Open time before one trial call (half-open).")


class LimitsConfig(_Section):
    """Input limits; anything over them is rejected before it is written."""

    max_content_chars: int = Field(100_000, ge=1, description="Longest message content, in characters.")
    max_metadata_bytes: int = Field(
        65_536, ge=2, description="Largest message metadata (and query metadata_filter), as JSON bytes."
    )
    max_messages_per_round: int = Field(1_000, ge=1, description="Most messages in one round.")
    max_id_chars: int = Field(256, ge=1, description="Longest user, agent, session or message id.")


class ServerConfig(_Section):
    """The HTTP gateway (``memfuse-memory serve``): where it listens, keys and request limits."""

    host: str = Field("127.0.0.1", min_length=1, description="Interface to listen on (`serve --host` overrides).")
    port: int = Field(
        8765, ge=1, le=65535, description="Port to listen on (`serve --port` overrides); the SDK's default."
    )
    require_api_key: bool | None = Field(
        None,
        description="Every request needs an API key; null: on exactly when the host is not a loopback address.",
    )
    allow_public_without_key: bool = Field(
        False, description="Start with require_api_key false on a non-loopback host (refused otherwise)."
    )
    admin_api_key: str | None = Field(
        None,
        min_length=16,
        description="Admin key (creates users and their keys); the MEMFUSE_ADMIN_API_KEY environment variable wins.",
    )
    max_body_bytes: int = Field(4_194_304, ge=1024, description="Largest request body; larger ones get a 413.")
    max_list_limit: int = Field(100, ge=1, description="Largest `limit` of a message list request.")
    registry_file: str = Field(
        "server.sqlite3",
        pattern=r"^[\w.-]+$",
        description="SQLite file in the data dir holding users, agents, sessions and hashed API keys.",
    )
    keep_alive_seconds: float = Field(
        75.0,
        gt=0,
        description="How long an idle HTTP connection stays open; short ones race clients that reuse them.",
    )
    shutdown_timeout_seconds: float = Field(
        30.0, gt=0, description="On SIGTERM or Ctrl-C, how long requests in flight may take to finish."
    )
    telemetry: bool = Field(
        False,
        description="FastAPI's OpenTelemetry spans, metrics and logs per request (exported where OpenTelemetry "
        "is configured); off, a request does not pay for checking.",
    )


class MemFuseConfig(_Section):
    """The whole configuration, as in ``config/buffer/default.yaml``."""

    buffer: BufferConfig = BufferConfig()
    storage: StorageConfig = StorageConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    retry: RetryConfig = RetryConfig()
    limits: LimitsConfig = LimitsConfig()
    server: ServerConfig = ServerConfig()


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _expand(overrides: dict[str, Any]) -> dict[str, Any]:
    """Turn ``{"buffer__query__max_size": 3}`` into ``{"buffer": {"query": {"max_size": 3}}}``."""
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        *parents, leaf = key.split("__")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "<root>"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def load_config(
    config: str | Path | MemFuseConfig | dict[str, Any] | None = None,
    *,
    data_dir: str | Path | None = None,
    **overrides: Any,
) -> MemFuseConfig:
    """Build a validated config from a YAML path, a config object, a dict or the defaults.

    ``overrides`` are merged on top, as nested dicts or ``section__key`` names; ``data_dir``
    sets ``storage.data_dir``.
    """
    if config is None:
        raw: dict[str, Any] = {}
    elif isinstance(config, MemFuseConfig):
        raw = config.model_dump()
    elif isinstance(config, dict):
        raw = config
    else:
        path = Path(config)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping, not {type(loaded).__name__}")
        raw = loaded
    merged = _deep_merge(raw, _expand(overrides))
    if data_dir is not None:
        merged = _deep_merge(merged, {"storage": {"data_dir": Path(data_dir)}})
    try:
        return MemFuseConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {_describe(exc)}") from exc


def config_reference_markdown() -> str:
    """The configuration reference table of the README, generated from the models' fields."""
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, f"{prefix}{name}.")
                continue
            default = field.default
            shown = default.as_posix() if isinstance(default, Path) else default
            rows.append(f"| `{prefix}{name}` | `{json.dumps(shown)}` | {field.description or ''} |")

    walk(MemFuseConfig, "")
    return "\n".join(rows)
