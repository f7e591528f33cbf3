"""The buffers: pure in-memory state machines, no I/O (the engine's write path commits to the
message store before it hands rounds to the WriteBuffer; the index worker embeds and stores)."""

from memfuse_memory.buffer.hybrid_buffer import HybridBuffer
from memfuse_memory.buffer.round_buffer import RoundBuffer, Transfer

__all__ = ["HybridBuffer", "RoundBuffer", "Transfer"]
