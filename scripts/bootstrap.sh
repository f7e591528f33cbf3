#!/usr/bin/env bash
# Set up ./.venv from scratch (CPU torch first, then the package with every extra), then run a job:
#   bash scripts/bootstrap.sh demo   the main job: ingest a sample conversation, query it, show history
#   bash scripts/bootstrap.sh test   the whole test suite
# Extra arguments go to the job (for example: bash scripts/bootstrap.sh test -k crash).
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
"${pip[@]}" -e ".[langchain,llamaindex,bench,dev]"

case "$job" in
  demo) exec .venv/bin/memfuse-memory demo "$@" ;;
  test) exec .venv/bin/python -m pytest "$@" ;;
  *) echo "unknown job '$job': use demo or test" >&2; exit 2 ;;
esac
