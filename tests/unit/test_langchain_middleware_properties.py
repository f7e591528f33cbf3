"""Properties of MemFuseMemoryMiddleware: the memory budget, the trim, and any constructor arguments."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain.agents.middleware.types import ModelRequest, ModelResponse
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.runtime import Runtime

from langchain_memfuse import MemFuseMemoryMiddleware
from langchain_memfuse.agent_turns import RECALL_KEY, message_cost_text, trim
from memfuse_memory import MemFuseError
from memfuse_memory.tokens import TokenCounter
from tests.unit.test_langchain_middleware import RecordingModel, memory_messages, weather_call

_sessions = itertools.count()
_word = st.sampled_from(["cat", "Miso", "tea", "boat", "sea", "Lisbon", "name", "blue", "loves", "is"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    texts=st.lists(st.lists(_word, min_size=1, max_size=60).map(" ".join), min_size=1, max_size=12),
    budget=st.integers(min_value=1, max_value=200),
    top_k=st.integers(min_value=1, max_value=15),
)
def test_the_memory_message_never_exceeds_its_token_budget(memory, texts, budget, top_k):
    user = f"prop-{next(_sessions)}"
    memory.add([{"role": "user", "content": text} for text in texts], "old", user_id=user)
    middleware = MemFuseMemoryMiddleware(service=memory, user_id=user, token_budget=budget, top_k=top_k)
    seen: list[ModelRequest[Any]] = []

    def handler(request: ModelRequest[Any]) -> ModelResponse[Any]:
        seen.append(request)
        return ModelResponse(result=[AIMessage("ok")])

    request = ModelRequest(
        model=RecordingModel(responses=[]),
        messages=[HumanMessage("cat Miso tea boat sea Lisbon")],
        runtime=Runtime(context=None),
    )
    middleware.wrap_model_call(request, handler)
    notes = memory_messages(seen[0].messages)
    counter = memory.engine.counter
    for note in notes:
        assert counter.count_messages([note.text]) <= budget
        assert note.additional_kwargs[RECALL_KEY]["tokens"] <= budget
        ids = note.additional_kwargs[RECALL_KEY]["message_ids"]
        assert len(ids) == len(set(ids)) <= top_k
    assert len(notes) <= 1


def _conversation(turns: list[tuple[int, int]]) -> list[BaseMessage]:
    """Turns of (words in the question, tool calls before the answer), with ids as a graph gives them."""
    messages: list[BaseMessage] = []
    for t, (words, calls) in enumerate(turns):
        messages.append(HumanMessage(" ".join(["word"] * words), id=f"h{t}"))
        for c in range(calls):
            messages.append(weather_call(f"c{t}-{c}"))
            messages.append(ToolMessage("sunny", tool_call_id=f"c{t}-{c}", id=f"r{t}-{c}"))
        messages.append(AIMessage(f"answer {t}", id=f"a{t}"))
    return messages


@settings(max_examples=150, deadline=None)
@given(
    turns=st.lists(st.tuples(st.integers(1, 40), st.integers(0, 3)), min_size=1, max_size=8),
    budget=st.integers(1, 400),
)
def test_trim_keeps_whole_turns_within_budget_and_never_splits_a_tool_pair(turns, budget):
    counter = TokenCounter("gpt-4o-mini")

    def count(text: str) -> int:
        return counter.count_messages([text])

    messages = _conversation(turns)
    kept = trim(messages, budget, count)
    newest = messages[max(i for i, m in enumerate(messages) if isinstance(m, HumanMessage)) :]
    assert kept[-len(newest) :] == newest  # the current turn is whole
    assert kept == messages[len(messages) - len(kept) :]  # a suffix of the thread
    assert isinstance(kept[0], HumanMessage)
    if len(kept) > len(newest):
        assert sum(count(message_cost_text(m)) for m in kept) <= budget
    calls = {c["id"] for m in kept if isinstance(m, AIMessage) for c in m.tool_calls}
    assert {m.tool_call_id for m in kept if isinstance(m, ToolMessage)} == calls


_odd = st.one_of(
    st.text(max_size=12), st.sampled_from(["", "..", "a/b", "n\x00", "\ud800", " s", "x" * 300, "alice", "s1"])
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    user=_odd,
    session=_odd,
    top_k=st.one_of(st.integers(-2, 20), st.just(True), st.none()),
    budget=st.one_of(st.integers(-5, 500), st.floats(allow_nan=True)),
    since=st.one_of(st.none(), _odd, st.floats(allow_nan=True)),
    texts=st.lists(_odd, min_size=1, max_size=3),
)
def test_any_arguments_build_or_raise_a_memfuse_error_and_nothing_is_half_written(
    memory, user, session, top_k, budget, since, texts
):
    try:
        middleware = MemFuseMemoryMiddleware(
            service=memory, user_id=user, session_id=session, top_k=top_k, token_budget=budget, since=since
        )
    except MemFuseError:
        return
    messages = [HumanMessage(text, id=f"h{i}") for i, text in enumerate(texts)] + [AIMessage("ok", id="a")]
    before = len(memory.export_messages(user_id=user)["data"]["messages"])
    try:
        middleware.after_agent({"messages": messages}, Runtime(context=None))
    except MemFuseError:
        assert len(memory.export_messages(user_id=user)["data"]["messages"]) == before
        return
    middleware.after_agent({"messages": messages}, Runtime(context=None))
    assert len(memory.export_messages(user_id=user)["data"]["messages"]) - before in (0, len(messages))
