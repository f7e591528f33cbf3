"""MemFuseMemory over the fake embedder: storage, the token budget, recall and the sync/async parity."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import MockLLM
from llama_index.core.llms.mock import MockLLMWithChatMemoryOfLastCall
from llama_index.core.tools import ToolSelection

from llama_index.memory.memfuse import MemFuseMemory, TokenBudgetError
from llama_index.memory.memfuse.messages import message_text
from memfuse_memory import BlockingBufferService, BufferService
from memfuse_memory.errors import InvalidInputError, InvalidMessageError, InvalidScopeError, MemFuseError

Factory = Callable[..., MemFuseMemory]


@pytest.fixture
def make(memory: BlockingBufferService) -> Factory:
    def build(session_id: str = "s1", user_id: str = "alice", **kwargs: object) -> MemFuseMemory:
        return MemFuseMemory.from_defaults(session_id=session_id, user_id=user_id, service=memory, **kwargs)

    return build


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


def bot(text: str) -> ChatMessage:
    return ChatMessage(role="assistant", content=text)


def tokens(mem: MemFuseMemory, messages: list[ChatMessage]) -> int:
    counter = mem.engine.counter  # type: ignore[union-attr]
    return sum(counter.count_messages([message_text(m)]) for m in messages)


def test_put_and_get_all_keep_order_and_scope(make: Factory, memory: BlockingBufferService) -> None:
    mem = make()
    mem.put(user("I adopted a cat named Miso"))
    mem.put(bot("Congratulations!"))
    assert [m.content for m in mem.get_all()] == ["I adopted a cat named Miso", "Congratulations!"]
    stored = memory.get_messages_by_session("s1", user_id="alice")["data"]["messages"]
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert memory.get_messages_by_session("s1", user_id="bob")["data"]["messages"] == []


def test_put_messages_pairs_each_user_message_with_its_replies(make: Factory, memory: BlockingBufferService) -> None:
    mem = make(agent_id="helper")
    mem.put_messages([user("q1"), bot("a1"), user("q2"), bot("a2"), ChatMessage(role="tool", content="t")])
    stored = memory.get_messages_by_session("s1", user_id="alice")["data"]["messages"]
    rounds = [m["round_id"] for m in stored]
    assert rounds[0] == rounds[1] != rounds[2] == rounds[3] == rounds[4]
    assert {m["agent_id"] for m in stored} == {"helper"}


def test_each_put_is_stored_before_it_returns(make: Factory, memory: BlockingBufferService) -> None:
    mem = make()
    mem.put(user("unpaired question"))
    # a second adapter (or a restart) sees it at once: nothing waits inside the first object
    assert [m.content for m in make().get_all()] == ["unpaired question"]


def test_tool_call_turn_round_trips_exactly(make: Factory) -> None:
    mem = make()
    turn = [
        user("weather in Paris?"),
        ChatMessage(
            role="assistant",
            blocks=[ToolCallBlock(tool_call_id="c1", tool_name="weather", tool_kwargs={"city": "Paris"})],
            additional_kwargs={"tool_calls": [ToolSelection(tool_id="c1", tool_name="weather", tool_kwargs={})]},
        ),
        ChatMessage(role="tool", content="sunny", additional_kwargs={"tool_call_id": "c1"}),
        ChatMessage(role="chatbot", content="It is sunny."),
    ]
    mem.put_messages(turn)
    assert mem.get_all() == turn
    assert mem.get() == turn


def test_set_replaces_and_reset_clears_only_this_session(make: Factory) -> None:
    mem, other = make(), make(session_id="s2")
    mem.put_messages([user("old"), bot("old reply")])
    other.put(user("keep me"))
    mem.set([user("new"), bot("new reply")])
    assert [m.content for m in mem.get_all()] == ["new", "new reply"]
    mem.reset()
    assert mem.get_all() == []
    assert [m.content for m in other.get_all()] == ["keep me"]


def test_get_returns_whole_turns_within_budget(make: Factory) -> None:
    mem = make(token_limit=60, recall_top_k=0)
    for i in range(10):
        mem.put_messages([user(f"question number {i} about apples"), bot(f"answer number {i} about pears")])
    got = mem.get()
    assert got[0].role == MessageRole.USER
    assert tokens(mem, got) <= 60
    assert 0 < len(got) < 20
    assert got == mem.get_all()[-len(got) :]
    assert got[-1].content == "answer number 9 about pears"


def test_initial_token_count_shrinks_the_window(make: Factory) -> None:
    mem = make(token_limit=80, recall_top_k=0)
    for i in range(10):
        mem.put_messages([user(f"q{i}"), bot(f"a{i}")])
    full, reduced = mem.get(), mem.get(initial_token_count=40)
    assert len(reduced) < len(full)
    assert tokens(mem, reduced) <= 40
    with pytest.raises(TokenBudgetError, match="exceeds token_limit"):
        mem.get(initial_token_count=81)
    with pytest.raises(InvalidInputError):
        mem.get(initial_token_count=-1)


def test_window_never_starts_with_an_orphaned_tool_result(make: Factory) -> None:
    mem = make(token_limit=70, recall_top_k=0)
    mem.put_messages([user("first"), bot("first answer")])
    mem.put_messages(
        [
            user("call the tool"),
            ChatMessage(
                role="assistant",
                blocks=[ToolCallBlock(tool_call_id="c1", tool_name="lookup", tool_kwargs={"q": "x" * 20})],
            ),
            ChatMessage(role="tool", content="result " * 30, additional_kwargs={"tool_call_id": "c1"}),
            bot("done"),
        ]
    )
    got = mem.get()
    assert got, "the newest turn's tail must be returned"
    assert got[0].role != MessageRole.TOOL
    assert tokens(mem, got) <= 70


def test_a_message_larger_than_the_budget_is_a_typed_error(make: Factory) -> None:
    mem = make(token_limit=10)
    mem.put(user("word " * 50))
    with pytest.raises(TokenBudgetError, match="token_limit"):
        mem.get()
    assert isinstance(TokenBudgetError("x"), MemFuseError)


def test_recall_injects_other_sessions_and_skips_the_window(make: Factory) -> None:
    old = make(session_id="old")
    old.put_messages([user("My cat is called Miso and loves tuna"), bot("Miso sounds lovely")])
    new = make(session_id="new")
    new.put(user("what does my cat Miso love to eat?"))
    got = new.get()
    assert got[0].role == MessageRole.SYSTEM
    assert "My cat is called Miso and loves tuna" in got[0].content
    assert "session old" in got[0].content
    assert got[1:] == [user("what does my cat Miso love to eat?")]
    # the question itself is in the window, so it is not repeated as a memory
    assert got[0].content.count("what does my cat") == 0


def test_recall_uses_input_when_given_and_can_be_disabled(make: Factory) -> None:
    make(session_id="old").put_messages([user("I play the cello on sundays"), bot("nice")])
    new = make(session_id="new")
    new.put(user("hello"))
    assert "cello" in new.get(input="which instrument do I play?")[0].content
    assert make(session_id="new", recall_top_k=0).get() == [user("hello")]


def test_recall_never_crosses_users(make: Factory) -> None:
    make(user_id="bob", session_id="b").put_messages([user("bob's secret password is swordfish"), bot("ok")])
    mem = make(user_id="alice", session_id="a")
    mem.put(user("what is the secret password swordfish?"))
    got = mem.get()
    assert all("swordfish" not in m.content for m in got if m.role == MessageRole.SYSTEM)


def test_recall_scope_agent_limits_memories_to_the_agent(make: Factory) -> None:
    make(session_id="x", agent_id="a1").put_messages([user("the launch code is tango"), bot("ok")])
    mem = make(session_id="y", agent_id="a2", recall_scope="agent")
    mem.put(user("what is the launch code tango?"))
    assert mem.get()[0].role == MessageRole.USER
    wide = make(session_id="y", agent_id="a2")
    assert "launch code is tango" in wide.get()[0].content


def test_memories_respect_the_budget(make: Factory) -> None:
    old = make(session_id="old")
    for i in range(8):
        old.put_messages([user(f"fact {i}: the moon base {i} has {i} domes " + "filler " * 8), bot("noted")])
    mem = make(session_id="new", token_limit=80)
    mem.put(user("how many domes does the moon base have?"))
    got = mem.get()
    assert got[0].role == MessageRole.SYSTEM
    assert 1 <= got[0].content.count("\n- (") < mem.recall_top_k, "memories are cut to the budget"
    assert tokens(mem, got) <= 80


def test_simple_chat_engine_chat_stores_turns_and_prompts_with_memories(make: Factory) -> None:
    make(session_id="s1").put_messages([user("My favourite city is Lisbon"), bot("Lisbon is lovely")])
    llm = MockLLMWithChatMemoryOfLastCall()
    mem = make(session_id="s2")
    engine = SimpleChatEngine.from_defaults(llm=llm, memory=mem, system_prompt="Be brief.")
    engine.chat("Which city do I like most?")
    prompt = llm.last_chat_messages
    assert prompt[0].content == "Be brief."
    assert prompt[1].role == MessageRole.SYSTEM and "My favourite city is Lisbon" in prompt[1].content
    assert prompt[-1].content == "Which city do I like most?"
    assert [m.role for m in mem.get_all()] == [MessageRole.USER, MessageRole.ASSISTANT]


async def test_simple_chat_engine_achat(make: Factory) -> None:
    make(session_id="s1").put_messages([user("My dog is named Rex"), bot("Hi Rex")])
    llm = MockLLMWithChatMemoryOfLastCall(max_tokens=3)
    mem = make(session_id="s2")
    engine = SimpleChatEngine.from_defaults(llm=llm, memory=mem)
    await engine.achat("What is my dog named?")
    assert "My dog is named Rex" in llm.last_chat_messages[0].content
    stored = await mem.aget_all()
    assert [m.content for m in stored] == ["What is my dog named?", "text text text"]


def test_tokenizer_fn_lets_chat_engines_count_their_prefix(make: Factory) -> None:
    mem = make()
    assert len(mem.tokenizer_fn("hello world")) == 2


def test_from_defaults_with_llm_chat_history_and_memory_cls(memory: BlockingBufferService) -> None:
    mem = MemFuseMemory.from_defaults(
        session_id="h", service=memory, llm=MockLLM(), chat_history=[user("hi"), bot("hello")]
    )
    assert mem.token_limit == int(MockLLM().metadata.context_window * 0.75)
    assert [m.content for m in mem.get_all()] == ["hi", "hello"]


def test_bad_settings_and_inputs_are_typed_errors(make: Factory, memory: BlockingBufferService) -> None:
    with pytest.raises(InvalidInputError, match="token_limit"):
        make(token_limit=0)
    with pytest.raises(InvalidInputError, match="unknown_option"):
        make(unknown_option=1)
    with pytest.raises(InvalidScopeError):
        make(session_id="../etc")
    with pytest.raises(InvalidMessageError):
        make().put_messages(user("not a list"))  # type: ignore[arg-type]
    with pytest.raises(InvalidMessageError):
        make().put("just text")  # type: ignore[arg-type]


def test_serializes_to_dict_and_back(make: Factory, memory: BlockingBufferService) -> None:
    mem = make(token_limit=123, recall_top_k=3)
    data = mem.to_dict()
    assert data["class_name"] == "MemFuseMemory"
    assert data["token_limit"] == 123 and data["session_id"] == "s1"
    data.pop("class_name")
    again = MemFuseMemory(service=memory, **data)
    assert again.token_limit == 123 and again.recall_top_k == 3


def test_fetches_more_history_when_the_first_read_is_short(make: Factory) -> None:
    mem = make(token_limit=5000, recall_top_k=0)
    mem.put_messages(list(itertools.chain.from_iterable([user(f"q{i}"), bot(f"a{i}")] for i in range(60))))
    assert len(mem.get()) == 120


# -- sync/async parity -------------------------------------------------------------------------


async def test_sync_and_async_paths_give_the_same_results(memory: BlockingBufferService) -> None:
    aservice = BufferService(memory.engine)
    sync = MemFuseMemory.from_defaults(session_id="sync", user_id="p", service=memory, token_limit=120)
    asyn = MemFuseMemory.from_defaults(session_id="async", user_id="p", service=aservice, token_limit=120)
    history = [user("I grow tomatoes"), bot("great"), user("and basil"), bot("smells nice")]
    sync.put_messages(history[:2])
    await asyn.aput_messages(history[:2])
    sync.put(history[2])
    await asyn.aput(history[2])
    sync.put(history[3])
    await asyn.aput(history[3])
    assert sync.get_all() == await asyn.aget_all() == history
    assert sync.get() == await sync.aget()
    assert sync.get(input="tomatoes", initial_token_count=10) == await sync.aget(
        input="tomatoes", initial_token_count=10
    )
    sync.set(history[:2])
    await asyn.aset(history[:2])
    assert sync.get_all() == await asyn.aget_all()
    sync.reset()
    await asyn.areset()
    assert sync.get_all() == await asyn.aget_all() == []


# -- property: get never exceeds the budget ------------------------------------------------------

_sessions = itertools.count()

_message = st.tuples(
    st.sampled_from(["user", "assistant", "tool", "system"]),
    st.integers(min_value=0, max_value=60),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    conversation=st.lists(_message, min_size=1, max_size=25),
    token_limit=st.integers(min_value=8, max_value=300),
    initial=st.integers(min_value=0, max_value=40),
)
def test_get_never_exceeds_token_limit(
    make: Factory, conversation: list[tuple[str, int]], token_limit: int, initial: int
) -> None:
    session = f"prop-{next(_sessions)}"
    mem = make(session_id=session, token_limit=token_limit)
    messages = [ChatMessage(role=role, content=" ".join(f"w{i}" for i in range(words))) for role, words in conversation]
    mem.put_messages(messages)
    if initial > token_limit:
        with pytest.raises(TokenBudgetError):
            mem.get(initial_token_count=initial)
        return
    try:
        got = mem.get(initial_token_count=initial)
    except TokenBudgetError:
        # only when not even the newest message fits
        newest = messages[-1]
        assert tokens(mem, [newest]) > token_limit - initial or newest.role == MessageRole.TOOL
        return
    assert tokens(mem, got) <= token_limit - initial
    history = [m for m in got if not (m.role == MessageRole.SYSTEM and m.content.startswith("Relevant memories"))]
    assert history == messages[len(messages) - len(history) :]
    if history:
        assert history[0].role != MessageRole.TOOL


def test_switching_session_by_assignment_is_validated(make: Factory) -> None:
    mem = make(session_id="one")
    mem.put(user("in one"))
    mem.session_id = "two"
    assert mem.get_all() == []
    with pytest.raises(InvalidScopeError):
        mem.session_id = ""
    with pytest.raises(InvalidInputError, match="token_limit"):
        mem.token_limit = 0
    assert mem.session_id == "two" and mem.token_limit == 3000


def test_copies_share_the_engine_and_from_dict_reconnects(make: Factory, memory: BlockingBufferService) -> None:
    import copy

    mem = make(token_limit=77)
    twin = copy.deepcopy(mem)
    assert twin.engine is mem.engine and twin.token_limit == 77
    again = MemFuseMemory.from_dict(mem.to_dict(), service=memory)
    assert again.engine is memory.engine and again.token_limit == 77


def test_service_engine_or_config_but_not_both(memory: BlockingBufferService, tmp_path) -> None:
    from memfuse_memory.errors import ConfigError

    assert MemFuseMemory.from_defaults(service=memory.engine).engine is memory.engine
    assert MemFuseMemory.from_defaults(service=BufferService(memory.engine)).engine is memory.engine
    with pytest.raises(ConfigError, match="either service"):
        MemFuseMemory.from_defaults(service=memory, data_dir=tmp_path / "other")
