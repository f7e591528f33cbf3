"""``python -m memfuse_memory``: the same command line as the ``memfuse-memory`` script."""

import sys

from memfuse_memory.cli import main

if __name__ == "__main__":
    sys.exit(main())
