"""LlamaIndex adapters for memfuse-memory.

- :class:`MemFuseMemory`: a ``BaseMemory`` for chat engines and agents (recent turns + recall).
- :class:`MemFuseMemoryBlock`: a block for ``llama_index.core.memory.Memory``.
- :class:`MemFuseRetriever`: a ``BaseRetriever`` over a user's stored messages.
"""

from llama_index.memory.memfuse.budget import TokenBudgetError
from llama_index.memory.memfuse.memory import MemFuseMemory
from llama_index.memory.memfuse.memory_block import MemFuseMemoryBlock
from llama_index.memory.memfuse.retriever import MemFuseRetriever

__all__ = ["MemFuseMemory", "MemFuseMemoryBlock", "MemFuseRetriever", "TokenBudgetError"]
