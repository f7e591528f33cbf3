"""The PostgreSQL message store's pure parts: DSN redaction, settings, and a failed
connection's error (no server needed)."""

from __future__ import annotations

import pytest

from memfuse_memory.config import MessageStoreConfig, load_config
from memfuse_memory.errors import ConfigError, StorageUnavailableError
from memfuse_memory.storage.postgres import PostgresMessageStore, redact_dsn
from memfuse_memory.storage.postgres.dsn import quote_ident


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
