"""The PostgreSQL message store's pure parts: DSN redaction, keyword SQL, settings, and a failed
connection's error (no server needed)."""

from __future__ import annotations

import pytest

from memfuse_memory.config import MessageStoreConfig, load_config
from memfuse_memory.errors import ConfigError, StorageUnavailableError
from memfuse_memory.models import QueryRequest
from memfuse_memory.storage.postgres import PostgresMessageStore, redact_dsn
from memfuse_memory.storage.postgres.dsn import quote_ident
from memfuse_memory.storage.postgres.keywords import COMMON_MIN_ROWS, keyword_sql


def request(text: str, **scope: object) -> QueryRequest:
    fields: dict[str, object] = {
        "text": text,
        "top_k": 5,
        "user_id": "u1",
        "session_id": None,
        "agent_id": None,
        "sort_by": "score",
        "order": "desc",
        "metadata_filter": None,
        "since": None,
        "until": None,
    }
    fields.update(scope)
    return QueryRequest(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("postgresql://app:s3cr%40t@db.example:5432/mem", "postgresql://app:***@db.example:5432/mem"),
        ("postgres://app:pw@h/db?sslmode=require", "postgres://app:***@h/db?sslmode=require"),
        ("postgresql://app@h/db", "postgresql://app@h/db"),
        ("host=h user=app password=pw dbname=m", "host=h user=app password=*** dbname=m"),
        ("host=h password = 'p w\\'x' dbname=m", "host=h password = *** dbname=m"),
        (
            "postgresql://h/db?user=app&password=pw&sslmode=require",
            "postgresql://h/db?user=app&password=***&sslmode=require",
        ),
    ],
)
def test_redact_dsn_hides_every_password(dsn: str, expected: str) -> None:
    assert redact_dsn(dsn) == expected


def test_redact_dsn_inside_an_error_message() -> None:
    text = 'connection to "postgresql://a:topsecret@h:1/d" failed'
    assert "topsecret" not in redact_dsn(text)


def test_quote_ident() -> None:
    assert quote_ident('we"ird') == '"we""ird"'


def test_keyword_sql_ors_the_words_within_the_scope() -> None:
    built = keyword_sql(request("Where did I go RUNNING? O'Brien", session_id="s1", agent_id="a"), 7, "mem")
    assert built is not None
    sql, args = built
    assert args[:3] == ["go running o brien", "mem", COMMON_MIN_ROWS]
    assert args[3:6] == ["u1", "s1", "a"] and args[-2:] == ["u1", 7]
    assert "m.user_id = %s AND m.session_id = %s AND m.agent_id = %s" in sql
    assert "m.tsv @@ (SELECT query FROM q)" in sql and "ln(1 + (c.n - df.n + 0.5) / (df.n + 0.5))" in sql
    assert sql.rstrip().endswith("LIMIT %s")
    assert sql.count("%s") == len(args)


def test_keyword_sql_of_stop_words_only_is_none() -> None:
    assert keyword_sql(request("what is it"), 5, "mem") is None


def test_message_store_settings() -> None:
    config = load_config({"storage": {"message_store": {"backend": "postgres", "dsn": "postgresql://h/db"}}})
    settings = config.storage.message_store
    assert (settings.backend, settings.schema_name, settings.pool_max_size) == ("postgres", "memfuse", 8)
    assert load_config().storage.message_store.backend == "sqlite"
    with pytest.raises(ConfigError):
        load_config({"storage": {"message_store": {"backend": "mysql"}}})
    with pytest.raises(ConfigError):
        load_config({"storage": {"message_store": {"schema_name": "bad-name; drop"}}})


def test_unreachable_server_fails_fast_with_a_typed_redacted_error() -> None:
    settings = MessageStoreConfig(
        backend="postgres", dsn="postgresql://app:hunter2@127.0.0.1:9/db", connect_timeout_seconds=1.0
    )
    with pytest.raises(StorageUnavailableError) as caught:
        PostgresMessageStore(settings)
    assert "hunter2" not in str(caught.value)
    assert "***" in str(caught.value)
