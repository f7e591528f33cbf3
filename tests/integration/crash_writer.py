"""Subprocess for the crash test: ingests rounds forever, appending each acknowledged id to a file.

Every ``FLUSH_EVERY`` rounds it calls ``flush_all`` between ``flush-start`` and ``flush-end`` lines
of the events file, so the test can kill it in the middle of a flush.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from memfuse_memory import BlockingBufferService
from tests.integration.message_store_mode import overrides

TOPICS = ["hiking in the Alps", "baking sourdough bread", "a cat named Miso", "learning the cello", "the Kyoto trip"]
FLUSH_EVERY = 6


def log(stream: TextIO, line: str) -> None:
    """Append one line and make it durable before going on."""
    stream.write(line + "\n")
    stream.flush()
    os.fsync(stream.fileno())


def main() -> None:
    data_dir, ack_path, events_path, run = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    with open(events_path, "a", encoding="utf-8") as events:
        log(events, f"{run}\tstarting")
        service = BlockingBufferService.from_config(
            data_dir=data_dir,
            config=overrides(data_dir),
            buffer__round_buffer__max_size=1,
            buffer__hybrid_buffer__max_size=2,
            embedding__batch_size=4,
        )
        service.start()
        log(events, f"{run}\tready\t{service.get_stats()['service']['recovered_rounds']}")
        with open(ack_path, "a", encoding="utf-8") as acks:
            n = 0
            while True:
                session = f"s{n % 3}"
                topic = TOPICS[n % len(TOPICS)]
                question = f"run {run} round {n}: tell me about {topic}"
                answer = f"Here is note {n} of run {run} on {topic}."
                messages = [
                    {"role": "user", "content": question, "id": f"r{run}-{n}-u"},
                    {"role": "assistant", "content": answer, "id": f"r{run}-{n}-a"},
                ]
                reply = service.add(messages, session_id=session, user_id="crash")
                log(acks, "".join(f"{session}\t{mid}\n" for mid in reply["data"]["message_ids"]).rstrip("\n"))
                n += 1
                if n % FLUSH_EVERY == 0:
                    log(events, f"{run}\tflush-start")
                    service.flush_all()
                    log(events, f"{run}\tflush-end")
                time.sleep(0.01)  # a chat-like pace, so the worker embeds and flushes while we are killed


if __name__ == "__main__":
    main()
