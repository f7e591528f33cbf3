"""Start-up cost, each in a fresh process: import, ``from_config`` + start, a CLI query, RSS and threads.

Every figure comes from a new interpreter (``sys.executable``), as a user or an app pays it; the
median of ``repeat`` runs is reported with the fastest. ``python -X importtime`` names the packages
whose import costs the most.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Runs in the child: time the import and from_config + start, then read RSS and threads (psutil).
_PROBE = r"""
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import asyncio
from memfuse_memory import BufferService
t1 = time.perf_counter()

async def main():
    import psutil
    me = psutil.Process()
    service = BufferService.from_config(data_dir=sys.argv[1], **json.loads(sys.argv[2]))
    await service.start()
    t2 = time.perf_counter()
    cpu = time.process_time() - c0
    after_start = (me.memory_info().rss, me.num_threads())
    if sys.argv[3] == "fill":
        for i in range(20):
            await service.add([{"role": "user", "content": f"note {i}: I adopted a kitten and named her Miso."}],
                              session_id="startup", user_id="startup")
        await service.flush_all()
    await service.query("which pet do I have?", user_id="startup")
    t3 = time.perf_counter()
    after_query = me.memory_info().rss
    await service.close()
    print(json.dumps({
        "import_s": t1 - t0, "from_config_start_s": t2 - t1, "first_query_s": t3 - t2,
        "import_start_cpu_s": cpu,
        "rss_after_start_mb": after_start[0] / 2**20, "threads_after_start": after_start[1],
        "rss_after_query_mb": after_query / 2**20, "torch_imported": "torch" in sys.modules,
        "sentence_transformers_imported": "sentence_transformers" in sys.modules,
    }))

asyncio.run(main())
"""


def _env() -> dict[str, str]:
    """The child's environment: this interpreter's, with the importable project first on the path."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def _probe(data_dir: Path, overrides: dict[str, Any], fill: bool) -> dict[str, Any]:
    cmd = [sys.executable, "-c", _PROBE, str(data_dir), json.dumps(overrides), "fill" if fill else "-"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cli_query(data_dir: Path, overrides: dict[str, Any]) -> tuple[float, float]:
    """Wall and CPU seconds of ``memfuse-memory query`` end to end, process start to exit."""
    cmd = [sys.executable, "-m", "memfuse_memory", "query", "which pet do I have?", "--user", "startup"]
    cmd += ["--data-dir", str(data_dir)]
    env = _env()
    if overrides:
        config = data_dir.parent / "startup.yaml"
        config.write_text(json.dumps(overrides))  # JSON is YAML
        cmd += ["--config", str(config)]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime
    return wall, cpu


def import_costs(top: int = 8) -> list[tuple[str, float]]:
    """The top-level packages whose import (self time, summed) costs most when memfuse_memory starts a service."""
    code = "import memfuse_memory, memfuse_memory.engine, memfuse_memory.cli.app"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, env=_env(), check=True
    )
    totals: dict[str, float] = {}
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[0].startswith("import time:") or "self" in parts[0]:
            continue
        package = parts[2].strip().split(".")[0]
        totals[package] = totals.get(package, 0.0) + int(parts[0].split(":")[1]) / 1e6
    return sorted(totals.items(), key=lambda item: -item[1])[:top]


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3)}


def measure(backend: str | None = None, repeat: int = 3) -> dict[str, Any]:
    """Start-up figures of a service with ``embedding.backend`` ``backend`` (None: the default)."""
    overrides = {"embedding": {"backend": backend}} if backend else {}
    with tempfile.TemporaryDirectory(prefix="memfuse-startup-") as tmp:
        data_dir = Path(tmp) / "data"
        _probe(data_dir, overrides, fill=True)
        runs = [_probe(data_dir, overrides, fill=False) for _ in range(repeat)]
        cli = [_cli_query(data_dir, overrides) for _ in range(repeat)]
    result: dict[str, Any] = {"backend": backend or "default", "repeat": repeat}
    keys = ("import_s", "from_config_start_s", "import_start_cpu_s", "first_query_s")
    for key in (*keys, "rss_after_start_mb", "rss_after_query_mb"):
        result[key] = _summary([run[key] for run in runs])
    result["threads_after_start"] = max(run["threads_after_start"] for run in runs)
    result["torch_imported"] = any(run["torch_imported"] for run in runs)
    result["cli_query_s"] = _summary([wall for wall, _ in cli])
    result["cli_query_cpu_s"] = _summary([cpu for _, cpu in cli])
    result["import_costs_s"] = [(name, round(seconds, 3)) for name, seconds in import_costs()]
    return result


def section(results: list[dict[str, Any]]) -> list[str]:
    """The report's start-up table, one column per backend."""
    lines = [
        "## Start-up",
        "",
        "Each figure from a fresh interpreter, median (fastest) of the runs; CPU seconds (user + system, all "
        "threads) are shown beside wall time because they do not depend on what else the machine runs.",
        "",
        "| figure | target | " + " | ".join(f"backend {r['backend']}" for r in results) + " |",
        "| --- | --- |" + " --- |" * len(results),
    ]
    rows = [
        ("import memfuse_memory (s)", "", "import_s"),
        ("from_config + start (s)", "<= 1.5", "from_config_start_s"),
        ("CPU of import + from_config + start (s)", "", "import_start_cpu_s"),
        ("first query after start (s)", "", "first_query_s"),
        ("CLI query end to end (s)", "<= 2.5", "cli_query_s"),
        ("CPU of the CLI query (s)", "", "cli_query_cpu_s"),
        ("RSS after start (MB)", "<= 250", "rss_after_start_mb"),
        ("RSS after one query (MB)", "", "rss_after_query_mb"),
    ]
    for label, target, key in rows:
        cells = [f"{r[key]['median']:.2f} ({r[key]['min']:.2f})" for r in results]
        lines.append(f"| {label} | {target} | " + " | ".join(cells) + " |")
    lines.append("| threads after start | | " + " | ".join(str(r["threads_after_start"]) for r in results) + " |")
    imported = " | ".join("yes" if r["torch_imported"] else "no" for r in results)
    lines.append(f"| torch imported | no | {imported} |")
    costs = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in results[-1]["import_costs_s"])
    lines += ["", f"Costliest imports (self time, `python -X importtime`): {costs}."]
    return lines


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1] if len(sys.argv) > 1 else None), indent=2))
