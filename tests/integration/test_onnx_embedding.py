"""The ONNX runtime against the PyTorch runtime on the real MiniLM, and a start-up without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from memfuse_memory.config import load_config
from memfuse_memory.embedding import load_embedder
from memfuse_memory.embedding.onnx_runtime import OnnxEmbedder
from memfuse_memory.embedding.sentence_transformer import SentenceTransformerEmbedder

ROOT = Path(__file__).resolve().parents[2]

CORPUS = [
    "I adopted a kitten last week and named her Miso.",
    "My dog Biscuit loves chasing tennis balls in the park.",
    "We booked an apartment near the Alfama district for our Lisbon trip.",
    "The flight to Lisbon leaves at 7:40 on Saturday morning.",
    "My knee has been hurting since the half marathon in April.",
    "The physiotherapist told me to stretch twice a day and skip running for a month.",
    "I'm learning to bake sourdough bread; my starter is called Gerald.",
    "The sourdough came out flat again, probably the kitchen is too cold.",
    "My sister's birthday party is on the 14th at her new house.",
    "I bought her a set of watercolour paints as a present.",
    "Work has been busy: we are migrating the billing system to a new database.",
    "The database migration is scheduled for the last weekend of the month.",
    "I started reading a novel about a lighthouse keeper in Norway.",
    "On Sundays I play five-a-side football with old university friends.",
    "My landlord finally fixed the leaking bathroom tap.",
    "I switched my phone plan to one with unlimited data.",
    "Our team won the pub quiz thanks to a question about volcanoes.",
    "I'm thinking about taking Spanish lessons in the evenings.",
    "The cat keeps knocking my plants off the windowsill at night.",
    "I planted tomatoes and basil on the balcony this spring.",
    "My grandmother's recipe for lemon cake uses olive oil instead of butter.",
    "The car needs new tyres before the winter.",
    "I have a dentist appointment next Tuesday at three.",
    "We watched a documentary about octopuses and their intelligence.",
    "I'm saving money for a new laptop for video editing.",
    "The neighbours are renovating, so it is noisy every morning.",
    "I ran 10 kilometres in 52 minutes, my best time this year.",
    "My favourite podcast is about the history of ordinary objects.",
    "I need to renew my passport before the trip in June.",
    "We adopted a rescue greyhound called Pepper two years ago.",
    " ".join(["A very long note about the garden, the weather and the neighbours."] * 40),
]

QUERIES = [
    "which pet do I have?",
    "where am I staying in Lisbon?",
    "what did the doctor say about my knee?",
    "when is my sister's birthday?",
    "what am I baking?",
    "what is happening with the database at work?",
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="module")
def runtimes(cache_dir: Path) -> tuple[OnnxEmbedder, SentenceTransformerEmbedder]:
    onnx = load_embedder(load_config(embedding__cache_dir=cache_dir))
    torch = load_embedder(load_config(embedding__backend="torch"))
    assert isinstance(onnx, OnnxEmbedder)
    assert isinstance(torch, SentenceTransformerEmbedder)
    return onnx, torch


def test_the_export_is_cached_in_the_configured_folder(runtimes: tuple[OnnxEmbedder, object], cache_dir: Path) -> None:
    onnx, _ = runtimes
    assert onnx.onnx_file.is_file()
    assert onnx.onnx_file.is_relative_to(cache_dir / "onnx")


def test_both_runtimes_give_the_same_vectors(runtimes: tuple[OnnxEmbedder, SentenceTransformerEmbedder]) -> None:
    onnx, torch = runtimes
    texts = CORPUS + QUERIES
    a, b = onnx.embed(texts), torch.embed(texts)
    assert a.shape == b.shape == (len(texts), 384)
    assert a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert float(np.min(np.sum(a * b, axis=1))) >= 0.9999


def test_both_runtimes_rank_the_same_top_10(runtimes: tuple[OnnxEmbedder, SentenceTransformerEmbedder]) -> None:
    onnx, torch = runtimes
    for query in QUERIES:
        tops = []
        for embedder in (onnx, torch):
            scores = embedder.embed(CORPUS) @ embedder.embed([query])[0]
            tops.append(list(np.argsort(-scores, kind="stable")[:10]))
        assert tops[0] == tops[1], query


def test_one_text_alone_and_in_a_batch_get_the_same_vector(runtimes: tuple[OnnxEmbedder, object]) -> None:
    onnx, _ = runtimes
    alone = onnx.embed([QUERIES[0]])[0]
    batched = onnx.embed([CORPUS[-1], QUERIES[0], "hi"])[1]
    assert float(alone @ batched) >= 0.9999
    assert onnx.embed([]).shape == (0, 384)


_FIRST_USE = textwrap.dedent(
    """
    import json, logging, sys
    from memfuse_memory.config import load_config
    from memfuse_memory.embedding import load_embedder

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("memfuse_memory.embedding").addHandler(handler)
    logging.getLogger("memfuse_memory.embedding").setLevel(logging.INFO)
    embedder = load_embedder(load_config(embedding__cache_dir=sys.argv[1]))
    vector = embedder.embed(["which pet do I have?"])[0]
    print(json.dumps({
        "embedder": type(embedder).__name__,
        "exported": any("exporting" in r.getMessage() for r in records),
        "first": float(vector[0]),
    }))
    """
)


def test_two_processes_on_an_empty_cache_export_once(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cache = tmp_path / "cache"
    starts = [
        subprocess.Popen(
            [sys.executable, "-c", _FIRST_USE, str(cache)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300) for process in starts]
    assert [process.returncode for process in starts] == [0, 0], [err.decode()[-2000:] for _, err in outputs]
    seen = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]
    assert [s["embedder"] for s in seen] == ["OnnxEmbedder", "OnnxEmbedder"]
    assert sorted(s["exported"] for s in seen) == [False, True]
    assert seen[0]["first"] == pytest.approx(seen[1]["first"], abs=1e-6)
    exported = list((cache / "onnx").glob("*/*"))
    assert [p.name for p in exported if not p.name.startswith(".")] == ["model.onnx"]
    assert [p.name for p in exported if p.name.startswith(".model-")] == []


_NO_TORCH = textwrap.dedent(
    """
    import asyncio, json, sys
    import memfuse_memory
    from memfuse_memory import BufferService

    async def main():
        service = BufferService.from_config(data_dir=sys.argv[1], embedding__cache_dir=sys.argv[2])
        await service.start()
        await service.add([{"role": "user", "content": "I adopted a kitten and named her Miso."}], session_id="s")
        await service.flush_all()
        reply = await service.query("which pet do I have?")
        embedder = type(service.engine.embedder).__name__
        await service.close()
        heavy = [name for name in ("torch", "sentence_transformers", "transformers") if name in sys.modules]
        print(json.dumps({"embedder": embedder, "heavy": heavy, "top": reply["data"]["results"][0]["content"]}))

    asyncio.run(main())
    """
)


def test_the_onnx_default_never_imports_torch(runtimes: tuple[OnnxEmbedder, object], cache_dir: Path, tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", _NO_TORCH, str(tmp_path / "data"), str(cache_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["embedder"] == "OnnxEmbedder"
    assert seen["heavy"] == []
    assert "Miso" in seen["top"]
