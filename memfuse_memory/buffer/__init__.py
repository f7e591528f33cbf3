"""The buffers: pure in-memory state machines, no I/O (the engine does that around them)."""

from memfuse_memory.buffer.hybrid_buffer import HybridBuffer
from memfuse_memory.buffer.round_buffer import RoundBuffer, Transfer

__all__ = ["HybridBuffer", "RoundBuffer", "Transfer"]
