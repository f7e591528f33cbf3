"""The engine: the thread-safe, synchronous core behind both facades.

- ``core``: :class:`Engine`, lifecycle and the public operations (the facades' one signature source)
- ``components``: the started parts built as one object, and the engine's lock order
- ``writes``: the write path (commit, buffer, invalidate; deletes; flush)
- ``search``: the query path (cache, rankings, fusion, assembly)
- ``stats``: metrics and health
"""

from memfuse_memory.engine.core import Engine
from memfuse_memory.validation import DEFAULT_SESSION

__all__ = ["DEFAULT_SESSION", "Engine"]
