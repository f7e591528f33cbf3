"""Acknowledged means findable by meaning at once: the real model, no flush, no wait."""

from __future__ import annotations

from pathlib import Path

from memfuse_memory import BlockingBufferService


def test_a_paraphrase_finds_the_round_just_added_first(tmp_path: Path) -> None:
    with BlockingBufferService.from_config(data_dir=tmp_path) as memory:
        memory.add(
            [
                {"role": "user", "content": "I drive an old blue Volvo station wagon."},
                {"role": "assistant", "content": "Classic car."},
            ],
            session_id="sunday",
            user_id="alice",
        )
        memory.add(
            [
                {"role": "user", "content": "I adopted a kitten and named her Miso."},
                {"role": "assistant", "content": "What a sweet name!"},
            ],
            session_id="monday",
            user_id="alice",
        )
        results = memory.query("which pet do I have?", top_k=3, user_id="alice")["data"]["results"]
        assert results[0]["content"] == "I adopted a kitten and named her Miso."
        assert results[0]["source"] == "round_buffer" and "vector" in results[0]["retrieval"]["methods"]


def test_a_message_scores_the_same_wherever_it_waits(tmp_path: Path) -> None:
    with BlockingBufferService.from_config(data_dir=tmp_path) as memory:
        for said in ("My sister lives in Lisbon.", "I am allergic to peanuts.", "I adopted a kitten named Miso."):
            memory.add([{"role": "user", "content": said}], session_id="s", user_id="alice")

        def scores() -> dict[str, tuple[float, str]]:
            found = memory.query("which pet do I have?", top_k=5, user_id="alice")["data"]["results"]
            return {r["content"]: (r["score"], r["source"]) for r in found}

        buffered = scores()
        memory.flush_all()
        stored = scores()
        assert {source for _, source in buffered.values()} == {"round_buffer"}
        assert {source for _, source in stored.values()} == {"storage"}
        assert buffered.keys() == stored.keys()
        for content, (score, _) in buffered.items():
            assert abs(score - stored[content][0]) < 1e-4, content
        assert max(buffered.values())[0] == buffered["I adopted a kitten named Miso."][0]
