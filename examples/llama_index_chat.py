"""LlamaIndex with memfuse-memory, fully offline: a chat engine over two sessions, then an agent.

Run:
    python examples/llama_index_chat.py                 # uses a fresh temporary data directory
    python examples/llama_index_chat.py --data-dir DIR  # keeps the memories in DIR

The mock LLMs answer with placeholder text; what matters is the prompt they receive, printed
below: in session 2 it starts with a system message recalling what the user said in session 1.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ToolCallBlock
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import MockFunctionCallingLLM
from llama_index.core.llms.mock import MockLLMWithChatMemoryOfLastCall
from llama_index.core.tools import FunctionTool

from llama_index.memory.memfuse import MemFuseMemory, MemFuseRetriever

USER = "alice"


def show_prompt(llm: MockLLMWithChatMemoryOfLastCall) -> None:
    print("  prompt the LLM received:")
    for message in llm.last_chat_messages or []:
        for line in (message.content or "").splitlines():
            print(f"    [{message.role.value}] {line}")


def chat_sessions(data_dir: str) -> None:
    llm = MockLLMWithChatMemoryOfLastCall(max_tokens=4)  # a MockLLM that remembers its last prompt

    print("== session 1 ==")
    memory = MemFuseMemory.from_defaults(session_id="monday", user_id=USER, token_limit=1500, data_dir=data_dir)
    engine = SimpleChatEngine.from_defaults(llm=llm, memory=memory, system_prompt="You are a friendly assistant.")
    for text in ["I adopted a cat named Miso last spring.", "I am training for a marathon in Lisbon."]:
        reply = engine.chat(text)
        print(f"  user: {text}\n  assistant: {reply.response}")
    print(f"  stored messages in session 1: {len(memory.get_all())}")

    print("== session 2 ==")
    memory = MemFuseMemory.from_defaults(session_id="tuesday", user_id=USER, token_limit=1500, data_dir=data_dir)
    engine = SimpleChatEngine.from_defaults(llm=llm, memory=memory, system_prompt="You are a friendly assistant.")
    question = "What is my cat called?"
    print(f"  user: {question}")
    engine.chat(question)
    show_prompt(llm)


async def agent_run(data_dir: str) -> None:
    print("== agent ==")

    def get_weather(city: str = "Lisbon") -> str:
        """Today's weather in a city."""
        return f"It is sunny in {city}."

    memory = MemFuseMemory.from_defaults(session_id="agent-run", user_id=USER, token_limit=1500, data_dir=data_dir)
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(get_weather)],
        llm=MockFunctionCallingLLM(),  # calls every tool once, then answers
        system_prompt="You help with travel plans.",
    )
    result = await agent.run("What is the weather like for my run?", memory=memory)
    print(f"  agent answer: {result}")
    for message in await memory.aget_all():
        calls = [block.tool_name for block in message.blocks if isinstance(block, ToolCallBlock)]
        print(f"  stored [{message.role.value}] {message.content or f'calls {calls}'}")


def recall(data_dir: str) -> None:
    print("== retriever ==")
    retriever = MemFuseRetriever(user_id=USER, top_k=2, data_dir=data_dir)
    for hit in retriever.retrieve("Where is my marathon?"):
        print(f"  {hit.score:.2f} [{hit.node.metadata['session_id']}] {hit.node.get_content()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="where memories are kept (default: a temporary directory)")
    args = parser.parse_args()
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="memfuse-llama-index-")
    chat_sessions(data_dir)
    asyncio.run(agent_run(data_dir))
    recall(data_dir)


if __name__ == "__main__":
    main()
