"""LangChain's standard retriever suite against MemFuseRetriever on the real engine."""

from __future__ import annotations

import pytest
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import RetrieversIntegrationTests

from langchain_memfuse import MemFuseRetriever
from memfuse_memory import BlockingBufferService
from memfuse_memory.shared import resolve_service

pytestmark = pytest.mark.integration

FACTS = [
    "I adopted a kitten named Miso last spring",
    "Miso the cat sleeps on the radiator",
    "My cat Miso hates the vacuum cleaner",
    "The vet said my cat needs a lighter diet",
    "I am learning to bake sourdough bread",
]


class TestMemFuseRetrieverStandard(RetrieversIntegrationTests):
    data_dir: str

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _memory(cls, tmp_path_factory):
        data_dir = tmp_path_factory.mktemp("retriever-standard")
        memory = BlockingBufferService(resolve_service(data_dir=data_dir))
        for n, fact in enumerate(FACTS):
            memory.add([{"role": "user", "content": fact}], f"s{n % 2}", user_id="alice")
        memory.flush_all()
        cls.data_dir = str(data_dir)
        yield
        memory.close()

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return MemFuseRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"data_dir": self.data_dir, "user_id": "alice", "k": 4}

    @property
    def retriever_query_example(self) -> str:
        return "what do I know about my cat?"

    def test_results_are_about_the_query(self, retriever: BaseRetriever) -> None:
        docs = retriever.invoke(self.retriever_query_example)
        assert len(docs) == 4
        assert all("cat" in d.page_content or "kitten" in d.page_content for d in docs)
