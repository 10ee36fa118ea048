"""What every process the server starts (training worker, inference worker, runtime
probe) shares: a clean channel to the server, dying with it, a log that may be on
a full disk and how to exit then; and the compilation cache the server hands them."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import NoReturn, TextIO

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


def log(text: str) -> None:
    """A line to the log, which may be on the disk that just filled up: then it is
    skipped, never raised, so the process still gets to record how its run ended."""
    with contextlib.suppress(OSError):
        print(text, file=sys.stderr)


def log_exception() -> None:
    """The exception being handled, to the log, as `log`."""
    with contextlib.suppress(OSError):
        traceback.print_exc()


def exit_disk_full() -> NoReturn:
    """Exits with DISK_FULL_EXIT at once: a normal exit would flush the log lines
    that could not be written, fail again and turn the status into Python's 120."""
    os._exit(DISK_FULL_EXIT)


def die_with_parent() -> None:
    """Linux: SIGTERM when the parent (the server) dies, even by SIGKILL."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def share_compile_cache(data_dir: Path) -> None:
    """Every training and inference process started from here on keeps what it compiles
    in DATA_DIR/compile-cache (JAX's persistent compilation cache, which JAX reads
    from these variables at import), so a resume, the next run of the same shapes or
    a new inference worker loads its steps instead of compiling them: a tiny run's
    cancel-and-resume took 20 s instead of 37 s on 2 cores. Every compiled function
    is kept, not only those over JAX's default 1 s: the many small ones add up.
    A JAX_COMPILATION_CACHE_DIR of the user's own wins; the directory may be
    deleted at any time."""
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(data_dir / "compile-cache"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
