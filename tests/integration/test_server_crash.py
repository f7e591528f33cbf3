"""Acknowledged over HTTP means durable: after SIGKILL (no flush, no close) and after a SIGTERM with
requests in flight, every add answered with a 2xx is there when the server comes back."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from memfuse_memory.server.process import ServerProcess

CLIENTS = 8
ENOUGH = 40  # acknowledged messages before the server is stopped


async def _session(base: str) -> str:
    async with httpx.AsyncClient(base_url=base) as http:
        uid = (await http.post("/api/v1/users", json={"name": "crash"})).json()["data"]["user"]["id"]
        aid = (await http.post("/api/v1/agents", json={"name": "crash-agent"})).json()["data"]["agent"]["id"]
        body = {"user_id": uid, "agent_id": aid, "name": "s"}
        return str((await http.post("/api/v1/sessions", json=body)).json()["data"]["session"]["id"])


async def _writers(base: str, sid: str, acknowledged: list[str], done: asyncio.Event) -> int:
    """Add rounds from several clients until ``done`` is set; count failed requests."""
    failures = 0

    async def writer(n: int) -> None:
        nonlocal failures
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            turn = 0
            while not done.is_set():
                turn += 1
                round_ = [{"role": "user", "content": f"client {n} turn {turn}: the weather is mild today"}]
                try:
                    reply = await http.post(f"/api/v1/sessions/{sid}/messages", json={"messages": round_})
                except httpx.HTTPError:
                    failures += 1
                    await asyncio.sleep(0.05)
                    continue
                if reply.status_code < 300:
                    acknowledged.extend(reply.json()["data"]["message_ids"])

    await asyncio.gather(*(writer(n) for n in range(CLIENTS)))
    return failures


def _missing(base: str, sid: str, ids: list[str]) -> list[str]:
    with httpx.Client(base_url=base, timeout=60) as http:
        reply = http.get(f"/api/v1/sessions/{sid}/messages", params={"limit": 100})
        assert reply.status_code == 200
        missing = []
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            found = http.post(f"/api/v1/sessions/{sid}/messages/read", json={"message_ids": part})
            if found.status_code != 200:
                missing += [
                    mid
                    for mid in part
                    if http.post(f"/api/v1/sessions/{sid}/messages/read", json={"message_ids": [mid]}).status_code
                    != 200
                ]
        return missing


def _stop_during_writes(data: Path, stop: str) -> tuple[int, list[str]]:
    server = ServerProcess(data).start()
    sid = asyncio.run(_session(server.base_url))
    acknowledged: list[str] = []

    async def run() -> None:
        done = asyncio.Event()
        load = asyncio.create_task(_writers(server.base_url, sid, acknowledged, done))
        deadline = time.monotonic() + 120
        while len(acknowledged) < ENOUGH and time.monotonic() < deadline:  # stop mid-load, however slow the machine
            await asyncio.sleep(0.05)
        if stop == "kill":
            server.kill()
        else:
            await asyncio.to_thread(server.stop)
        await asyncio.sleep(1)  # the writers meet the stopped server
        done.set()
        await load

    asyncio.run(run())
    code = server.process.returncode if server.process else 0
    restarted = ServerProcess(data).start()
    try:
        missing = _missing(restarted.base_url, sid, acknowledged)
    finally:
        assert restarted.stop() == 0
    print(f"[server-{stop}] acknowledged={len(acknowledged)} lost={len(missing)} exit={code}")
    assert len(acknowledged) >= ENOUGH
    return code, missing


def test_sigkill_loses_nothing_acknowledged(tmp_path: Path) -> None:
    code, missing = _stop_during_writes(tmp_path / "data", "kill")
    assert code == -9 and missing == []


def test_sigterm_finishes_in_flight_requests_and_loses_nothing(tmp_path: Path) -> None:
    code, missing = _stop_during_writes(tmp_path / "data", "term")
    assert code == 0 and missing == []
