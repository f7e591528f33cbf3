"""LlamaIndex adapters for memfuse-memory."""
