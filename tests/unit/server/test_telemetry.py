"""``server.telemetry``: FastAPI's per-request OpenTelemetry spans only when asked for.

Each case runs in its own interpreter: OpenTelemetry's global tracer provider can be set once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

_PROBE = r"""
import asyncio, json, sys
import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from memfuse_memory import BufferService
from memfuse_memory.config import load_config
from memfuse_memory.server import create_app, resolve_settings
from tests.fakes import FakeEmbedder, MemoryVectorStore

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

async def main():
    config = load_config(data_dir=sys.argv[1], server={"telemetry": sys.argv[2] == "on"})
    service = BufferService.from_config(config, embedder=FakeEmbedder(), vector_store=MemoryVectorStore())
    app = create_app(service, resolve_settings(config, environ={}))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            status = (await client.post("/api/v1/users", json={"name": "alice"})).status_code
    print(json.dumps({"status": status, "spans": len(exporter.get_finished_spans())}))

asyncio.run(main())
"""


@pytest.mark.parametrize(("setting", "traced"), [("off", False), ("on", True)])
def test_requests_are_traced_only_with_telemetry_on(tmp_path: Path, setting: str, traced: bool) -> None:
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path / "data"), setting],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["status"] == 201
    assert (seen["spans"] > 0) is traced, seen
