"""The HTTP gateway under load: concurrent asyncio clients adding and querying against one
``memfuse-memory serve`` on 127.0.0.1, and the same operations in process as the baseline.

Each client owns one session and, for a fixed time, adds a round (user + assistant) and, every
``query_every`` operations, asks the session a question (the SDK's ``query_session``). Every add
answered with a 2xx is then read back over HTTP: ``lost`` counts those that are not there.

The clients speak HTTP with aiohttp, the MemFuse SDK's own async transport. httpx drives the app in
process (no socket); over a socket it costs several milliseconds more per request than aiohttp here
(the one-client httpx row shows it), which is the client's cost, not the server's.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from memfuse_memory.bench.latency import percentiles
from memfuse_memory.config import load_config
from memfuse_memory.embedding.base import Embedder
from memfuse_memory.server.process import ServerProcess
from memfuse_memory.service import BufferService

SUBJECTS = ["my garden", "the new job", "a trip to Kyoto", "our dog Rex", "the piano lessons", "a tax question"]

Operation = Callable[[int, int], Awaitable[list[str]]]
WARM_UP_SECONDS = 2.0
"""One client's load, unmeasured, before the one-client runs: the server is a fresh process (cold caches)."""
Post = Callable[[str, dict[str, Any]], Awaitable[tuple[int, Any]]]
"""POST a JSON body to a path; the status and the decoded JSON answer."""


def _round(client: int, turn: int) -> list[dict[str, str]]:
    subject = SUBJECTS[(client + turn) % len(SUBJECTS)]
    return [
        {"role": "user", "content": f"(client {client} turn {turn}) can you help me plan {subject} this week?"},
        {"role": "assistant", "content": f"(client {client} turn {turn}) yes: start small with {subject}."},
    ]


def _question(client: int, turn: int) -> str:
    return f"what did I say about {SUBJECTS[(client * 7 + turn) % len(SUBJECTS)]}?"


def _summary(samples: list[float], seconds: float) -> dict[str, Any]:
    if not samples:
        return {"count": 0, "per_s": 0.0, "p50_ms": None, "p99_ms": None}
    shares = percentiles(samples)
    return {
        "count": len(samples),
        "per_s": round(len(samples) / seconds, 1),
        "p50_ms": round(shares["p50"], 3),
        "p99_ms": round(shares["p99"], 3),
    }


async def _drive(clients: int, seconds: float, query_every: int, add: Operation, ask: Operation) -> dict[str, Any]:
    """Run ``clients`` loops for ``seconds``; latency per operation, errors, and the acknowledged ids."""
    latencies: dict[str, list[float]] = {"add": [], "query": []}
    acknowledged: dict[int, list[str]] = {n: [] for n in range(clients)}
    errors: list[str] = []
    deadline = time.monotonic() + seconds

    async def loop(client: int) -> None:
        turn = 0
        while time.monotonic() < deadline:
            turn += 1
            name, call = ("query", ask) if turn % query_every == 0 else ("add", add)
            started = time.perf_counter()
            try:
                ids = await call(client, turn)
            except Exception as exc:
                errors.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
                continue
            latencies[name].append((time.perf_counter() - started) * 1000)
            if name == "add":
                acknowledged[client].extend(ids)

    started = time.monotonic()
    await asyncio.gather(*(loop(n) for n in range(clients)))
    elapsed = time.monotonic() - started
    return {
        "seconds": round(elapsed, 2),
        "operations": {name: _summary(samples, elapsed) for name, samples in latencies.items()},
        "errors": len(errors),
        "error_samples": errors[:5],
        "acknowledged": acknowledged,
    }


async def _in_process(embedder: Embedder, data_dir: Path, clients: int, seconds: float, every: int) -> dict[str, Any]:
    async with BufferService.from_config(data_dir=data_dir, embedder=embedder) as memory:

        async def add(client: int, turn: int) -> list[str]:
            reply = await memory.add(_round(client, turn), f"s{client}", user_id="bench", agent_id="agent")
            return list(reply["data"]["message_ids"])

        async def ask(client: int, turn: int) -> list[str]:
            await memory.query(_question(client, turn), 5, user_id="bench", agent_id="agent")
            return []

        await add(0, 0)
        result = await _drive(clients, seconds, every, add, ask)
        stored = {m["id"] for m in (await memory.export_messages(user_id="bench"))["data"]["messages"]}
    ids = [mid for group in result.pop("acknowledged").values() for mid in group]
    return {**result, "acknowledged_messages": len(ids), "lost": sum(1 for mid in ids if mid not in stored)}


async def _over_http(base: str, clients: int, seconds: float, every: int, tag: str) -> dict[str, Any]:
    """The load through aiohttp (the SDK's async transport), one pooled connection per client."""
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as http:

        async def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
            async with http.post(path, json=body) as reply:
                return reply.status, await reply.json(content_type=None)

        return await _through(post, clients, seconds, every, tag)


async def _over_httpx(base: str, seconds: float, every: int) -> dict[str, Any]:
    """One client through httpx over the socket: the same server, another client library."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        return await _through(_httpx_post(http), 1, seconds, every, "httpx")


def _httpx_post(http: httpx.AsyncClient) -> Post:
    async def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        reply = await http.post(path, json=body)
        return reply.status_code, reply.json()

    return post


async def _over_asgi(embedder: Embedder, data_dir: Path, seconds: float, every: int) -> dict[str, Any]:
    """One client through the gateway app in this process (httpx's ASGI transport): its own cost, no socket."""
    from memfuse_memory.server.app import create_app  # the server extra (FastAPI) only when this stage runs
    from memfuse_memory.server.settings import resolve_settings

    config = load_config(data_dir=data_dir)
    app = create_app(BufferService.from_config(config, embedder=embedder), resolve_settings(config, environ={}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway", timeout=60) as http,
    ):
        return await _through(_httpx_post(http), 1, seconds, every, "asgi")


async def _through(send: Post, clients: int, seconds: float, every: int, tag: str) -> dict[str, Any]:
    """The load through one HTTP client (a socket or the app in process), then the lost count."""

    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        status, answer = await send(path, body)
        if status >= 300:
            raise RuntimeError(f"{status} {str(answer)[:200]}")
        data: dict[str, Any] = answer["data"]
        return data

    uid = (await post("/api/v1/users", {"name": f"bench-{tag}"}))["user"]["id"]
    aid = (await post("/api/v1/agents", {"name": f"agent-{tag}"}))["agent"]["id"]
    sessions = [
        (await post("/api/v1/sessions", {"user_id": uid, "agent_id": aid, "name": f"s{n}"}))["session"]["id"]
        for n in range(clients)
    ]

    async def add(client: int, turn: int) -> list[str]:
        data = await post(f"/api/v1/sessions/{sessions[client]}/messages", {"messages": _round(client, turn)})
        return list(data["message_ids"])

    async def ask(client: int, turn: int) -> list[str]:
        body = {"query": _question(client, turn), "session_id": sessions[client], "agent_id": aid, "top_k": 5}
        await post(f"/api/v1/users/{uid}/query", body)
        return []

    await add(0, 0)
    result = await _drive(clients, seconds, every, add, ask)
    acknowledged = result.pop("acknowledged")
    lost = 0
    for client, ids in acknowledged.items():
        for start in range(0, len(ids), 1000):
            part = ids[start : start + 1000]
            read = f"/api/v1/sessions/{sessions[client]}/messages/read"
            if (await send(read, {"message_ids": part}))[0] != 200:
                found = [(await send(read, {"message_ids": [mid]}))[0] == 200 for mid in part]
                lost += found.count(False)
    return {**result, "acknowledged_messages": sum(len(ids) for ids in acknowledged.values()), "lost": lost}


def measure(
    embedder: Embedder, *, clients: int = 32, seconds: float = 20.0, query_every: int = 5, alone_seconds: float = 5.0
) -> dict[str, Any]:
    """In process first (its model is loaded here), then over HTTP against a server subprocess; each with
    ``clients`` at once and, for the per-request overhead without queueing, with one client alone."""
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        root = Path(tmp)
        asyncio.run(_in_process(embedder, root / "alone", 1, WARM_UP_SECONDS, query_every))  # same warm-up as HTTP
        alone_base = asyncio.run(_in_process(embedder, root / "alone", 1, alone_seconds, query_every))
        alone_asgi = asyncio.run(_over_asgi(embedder, root / "asgi", alone_seconds, query_every))
        baseline = asyncio.run(_in_process(embedder, root / "inprocess", clients, seconds, query_every))
        server = ServerProcess(root / "server").start()
        try:
            asyncio.run(_over_http(server.base_url, 1, WARM_UP_SECONDS, query_every, "warm-up"))  # a fresh process
            alone_http = asyncio.run(_over_http(server.base_url, 1, alone_seconds, query_every, "alone"))
            alone_httpx = asyncio.run(_over_httpx(server.base_url, alone_seconds, query_every))
            http = asyncio.run(_over_http(server.base_url, clients, seconds, query_every, "load"))
        finally:
            exit_code = server.stop()
    return {
        "clients": clients,
        "seconds": seconds,
        "query_every": query_every,
        "load_average_at_start": [round(x, 2) for x in load],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "http": http,
        "in_process": baseline,
        "p50_overhead_ms": _overhead(http, baseline),
        "alone": {"http": alone_http, "in_process": alone_base, "p50_overhead_ms": _overhead(alone_http, alone_base)},
        "asgi": {"http": alone_asgi, "p50_overhead_ms": _overhead(alone_asgi, alone_base)},
        "httpx": {"http": alone_httpx, "p50_overhead_ms": _overhead(alone_httpx, alone_base)},
        "server_exit_code": exit_code,
    }


def _overhead(http: dict[str, Any], base: dict[str, Any]) -> dict[str, float | None]:
    found: dict[str, float | None] = {}
    for op in ("add", "query"):
        ours, theirs = http["operations"][op]["p50_ms"], base["operations"][op]["p50_ms"]
        found[op] = None if ours is None or theirs is None else round(ours - theirs, 3)
    return found


def _rows(label: str, http: dict[str, Any], base: dict[str, Any], overhead: dict[str, Any]) -> list[str]:
    rows = []
    for op in ("add", "query"):
        h, b = http["operations"][op], base["operations"][op]
        rows.append(
            f"| {op} ({label}) | {h['per_s']} | {h['p50_ms']} / {h['p99_ms']} | {b['per_s']} "
            f"| {b['p50_ms']} / {b['p99_ms']} | {overhead[op]} |"
        )
    return rows


def section(result: dict[str, Any]) -> list[str]:
    """The report's Markdown section."""
    http, base = result["http"], result["in_process"]
    lines = [
        "## HTTP gateway under load",
        "",
        f"{result['clients']} concurrent aiohttp asyncio clients for {result['seconds']} s against one "
        f"`memfuse-memory serve` on 127.0.0.1 (every {result['query_every']}th operation a session query, the rest "
        "adds of one user+assistant round); the in-process baseline runs the same operations through "
        "`BufferService` in the same run. Real MiniLM, embedded Chroma; client and server share the 2 cores. "
        "With every client busy, p50 is mostly queueing (clients / throughput); the one-client rows (after "
        f"{WARM_UP_SECONDS:g} s of unmeasured warm-up on each side) show the cost of the HTTP hop itself.",
        "",
        "| operation | HTTP ops/s | HTTP p50 / p99 ms | in-process ops/s | in-process p50 / p99 ms | p50 overhead ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += _rows(f"{result['clients']} clients", http, base, result["p50_overhead_ms"])
    alone = result["alone"]
    lines += _rows("1 client", alone["http"], alone["in_process"], alone["p50_overhead_ms"])
    asgi = result["asgi"]
    lines += _rows("1 client, app in process, no socket", asgi["http"], alone["in_process"], asgi["p50_overhead_ms"])
    if "httpx" in result:
        httpx_run = result["httpx"]
        lines += _rows("1 client, httpx", httpx_run["http"], alone["in_process"], httpx_run["p50_overhead_ms"])
    target = result["p50_overhead_ms"]["add"]
    verdict = "meets" if target is not None and target <= 1.5 else "MISSES"
    lines += [
        "",
        f"- HTTP errors: {http['errors']}; acknowledged messages: {http['acknowledged_messages']}; "
        f"lost after the run: {http['lost']} (in process: {base['errors']} errors, {base['lost']} lost)",
        f"- target HTTP add p50 <= in-process add p50 + 1.5 ms: {verdict} ({target} ms)",
        f"- the same with one client alone (no queueing): HTTP add p50 overhead {alone['p50_overhead_ms']['add']} ms; "
        f"through the gateway app in process (routing, auth, validation, envelope; no socket, no second process): "
        f"{asgi['p50_overhead_ms']['add']} ms",
        f"- queueing at {result['clients']} clients (Little's law, clients / operations per second): "
        f"{_queue_ms(result['clients'], http)} ms over HTTP, {_queue_ms(result['clients'], base)} ms in process",
        f"- server exit code after SIGTERM: {result['server_exit_code']}; load average (1, 5, 15 min) at the "
        f"start: {result['load_average_at_start']}, at the end: {result.get('load_average_at_end')} (2 cores, shared)",
    ]
    return lines


def _queue_ms(clients: int, run: dict[str, Any]) -> float | None:
    """The mean time an operation takes when ``clients`` keep the server busy: clients / throughput."""
    rate = sum(op["per_s"] for op in run["operations"].values())
    return round(clients / rate * 1000, 1) if rate else None
