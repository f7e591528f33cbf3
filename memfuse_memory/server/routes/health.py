"""GET /api/v1/health (and with a trailing slash): our version and the engine's component health."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from memfuse_memory import __version__
from memfuse_memory.errors import MemFuseError
from memfuse_memory.server.context import Gateway, gateway
from memfuse_memory.server.envelope import fail, ok

router = APIRouter(tags=["health"])

API_VERSION = "0.3.3"
"""The MemFuse API release whose routes this server speaks. The SDK compares ``data.version`` with its
own and warns on every ``init`` when the minor versions differ, so that field carries the API version;
our own version is ``data.memfuse_memory_version``."""


@router.get("/health")
@router.get("/health/", include_in_schema=False)
async def health(gw: Gateway = Depends(gateway)) -> JSONResponse:  # noqa: B008
    """200 while the engine runs (components may report degraded); 503 when it is closed."""
    try:
        stats = gw.service.get_stats()
    except MemFuseError as exc:
        return fail(503, f"engine unavailable: {exc}")
    components = stats["write_buffer"]["component_health"]
    state = "ok" if all(value == "ok" for value in components.values()) else "degraded"
    return ok(
        {
            "status": state,
            "version": API_VERSION,
            "memfuse_memory_version": __version__,
            "components": components,
            "require_api_key": gw.settings.require_api_key,
        },
        message=f"memfuse-memory {__version__}: {state}",
    )
