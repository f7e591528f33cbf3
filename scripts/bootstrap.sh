#!/usr/bin/env bash
# Set up ./.venv from scratch (CPU torch first, then the package with every extra), then run a job:
#   bash scripts/bootstrap.sh demo   the main job: ingest a sample conversation, query it, show history
#   bash scripts/bootstrap.sh test   the whole test suite, then the integration tests again with
#                                    Chroma in server mode (a real `chroma run` the tests start), and a
#                                    third time against PostgreSQL (a private server from the pgserver wheel)
# Extra arguments go to the job, to both test runs (for example: bash scripts/bootstrap.sh test -k crash).
set -euo pipefail
cd "$(dirname "$0")/.."
job="${1:-demo}"
shift || true

python_bin="$(command -v python3.11 || command -v python3)"
if [ ! -x .venv/bin/python ]; then
  "$python_bin" -m venv .venv
fi
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
# CPU torch first: sentence-transformers would otherwise pull a multi-GB CUDA build.
"${pip[@]}" "torch==2.13.0"
"${pip[@]}" -e ".[langchain,llamaindex,bench,server,postgres,dev]"
# Export the packaged MiniLM to ONNX once (into $XDG_CACHE_HOME/memfuse-memory), so no run pays for it.
echo "ONNX model: $(.venv/bin/python -m memfuse_memory.embedding.onnx_export)"

case "$job" in
  demo) exec .venv/bin/memfuse-memory demo "$@" ;;
  test)
    .venv/bin/python -m pytest "$@"
    status=0
    MEMFUSE_TEST_VECTOR_MODE=server .venv/bin/python -m pytest tests/integration "$@" || status=$?
    # 5: the extra arguments selected no test of the server-mode run
    if [ "$status" -ne 0 ] && [ "$status" -ne 5 ]; then exit "$status"; fi
    status=0
    MEMFUSE_TEST_MESSAGE_STORE=postgres .venv/bin/python -m pytest tests/integration "$@" || status=$?
    if [ "$status" -ne 0 ] && [ "$status" -ne 5 ]; then exit "$status"; fi
    ;;
  *) echo "unknown job '$job': use demo or test" >&2; exit 2 ;;
esac
