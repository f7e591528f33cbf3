"""The HTTP gateway in front of the BufferService: the MemFuse v1 REST API that the ``memfuse`` SDK speaks.

``memfuse-memory serve`` runs it; :func:`create_app` builds the app over a service for tests and
embedding in other ASGI servers. It uses the library only through ``BufferService`` and
``memfuse_memory.errors``; its own records (users, agents, sessions, keys) live in a ``Registry``.
"""

from memfuse_memory.server.app import create_app
from memfuse_memory.server.settings import ServerSettings, resolve_settings

__all__ = ["ServerSettings", "create_app", "resolve_settings"]
