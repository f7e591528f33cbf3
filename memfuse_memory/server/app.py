"""The FastAPI app: one engine (through ``BufferService``), the registry, the routes and the envelope.

The engine starts with the app and is flushed and closed when the app stops, after the last
request in flight has finished (uvicorn waits for them on SIGTERM and Ctrl-C).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from memfuse_memory import __version__
from memfuse_memory.server.context import Gateway
from memfuse_memory.server.envelope import RequestGuard, install_handlers
from memfuse_memory.server.registry import Registry
from memfuse_memory.server.routes import include_routes
from memfuse_memory.server.settings import ServerSettings
from memfuse_memory.server.sqlite_registry import SQLiteRegistry
from memfuse_memory.service import BufferService

RegistryFactory = Callable[[ServerSettings], Registry]


def sqlite_registry(settings: ServerSettings) -> Registry:
    return SQLiteRegistry(settings.registry_path)


def _mount_docs(app: FastAPI) -> None:
    """/docs served from the swagger-ui files of the ``swagger-ui-bundle`` package: no CDN, works offline."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs/static", StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="memfuse-memory API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
        )


def create_app(
    service: BufferService, settings: ServerSettings, registry_factory: RegistryFactory = sqlite_registry
) -> FastAPI:
    """The gateway over a (not yet started) service; the app's lifespan starts and closes both."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        registry = registry_factory(settings)
        app.state.gateway = Gateway(service=service, registry=registry, settings=settings)
        try:
            yield
        finally:
            try:
                await service.close()
            finally:
                registry.close()

    app = FastAPI(
        title="memfuse-memory",
        version=__version__,
        description="MemFuse-compatible HTTP API over durable, buffered conversation memory.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
        telemetry=None if settings.telemetry else {"tracing": False, "metrics": False, "logs": False},
    )
    install_handlers(app)
    include_routes(app)
    _mount_docs(app)
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes)
    return app
