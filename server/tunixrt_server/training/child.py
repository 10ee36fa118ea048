"""What every process the server starts (training worker, inference worker, runtime
probe) does first, so it talks to the server on a clean channel and goes with it."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from typing import TextIO

# A training process that could not record its run's end because the disk is
# full exits with this (EX_IOERR), so the server's message says so even when
# space came back (the failed checkpoint's files removed) before it looked.
DISK_FULL_EXIT = 74


def server_channel() -> TextIO:
    """Our stdout, kept for messages to the server; anything a library prints
    (to fd 1) goes to stderr, the process's log, instead."""
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    return channel


def die_with_parent() -> None:
    """Linux: SIGTERM when the parent (the server) dies, even by SIGKILL."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
