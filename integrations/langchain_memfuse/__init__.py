"""LangChain adapters for memfuse-memory."""
