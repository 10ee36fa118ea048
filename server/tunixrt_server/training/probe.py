"""Prints, as one JSON line, what a training worker on this machine would use.

    python -m tunixrt_server.training.probe

The server runs it once at start, in its own process (the server never imports
JAX), and answers GetServerInfo from the result.
"""

from __future__ import annotations

import json
import os
import sys

from . import child


def main() -> int:
    os.nice(19)  # background work: never compete with the server for a core
    answer = child.server_channel()
    from .tunix_adapter import runtime  # JAX loads here

    answer.write(json.dumps(runtime.describe()) + "\n")
    answer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
