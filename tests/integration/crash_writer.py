"""Subprocess for the crash test: ingests rounds forever, appending each acknowledged id to a file."""

from __future__ import annotations

import os
import sys
import time

from memfuse_memory import BlockingBufferService

TOPICS = ["hiking in the Alps", "baking sourdough bread", "a cat named Miso", "learning the cello", "the Kyoto trip"]


def main() -> None:
    data_dir, ack_path, run = sys.argv[1], sys.argv[2], sys.argv[3]
    service = BlockingBufferService.from_config(
        data_dir=data_dir, buffer__round_buffer__max_size=1, buffer__hybrid_buffer__max_size=2, embedding__batch_size=4
    )
    with open(ack_path, "a", encoding="utf-8") as acks:
        n = 0
        while True:
            session = f"s{n % 3}"
            topic = TOPICS[n % len(TOPICS)]
            messages = [
                {"role": "user", "content": f"run {run} round {n}: tell me about {topic}", "id": f"r{run}-{n}-u"},
                {"role": "assistant", "content": f"Here is note {n} of run {run} on {topic}.", "id": f"r{run}-{n}-a"},
            ]
            reply = service.add(messages, session_id=session, user_id="crash")
            for mid in reply["data"]["message_ids"]:
                acks.write(f"{session}\t{mid}\n")
            acks.flush()
            os.fsync(acks.fileno())
            n += 1
            time.sleep(0.02)  # a chat-like pace, so the worker embeds and flushes while we are killed


if __name__ == "__main__":
    main()
