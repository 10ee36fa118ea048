"""One run over several hosts: jax.distributed, with process 0 deciding.

Every process of a worker group runs the same program (SPMD): each builds the
same batches, and the mesh spans every process's devices (jax.devices() is
global once initialised), so a collective that one process skips blocks the
others. So whatever a process could decide alone (stop now, decode one more
chunk within the time budget, keep this checkpoint as best) is decided by
process 0 and broadcast: `agree`.

CPU hosts talk through gloo collectives; accelerators use their own.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils

# A process of the group that stops answering fails the others' runs this fast
# (seconds), instead of holding them in a collective.
HEARTBEAT_TIMEOUT_S = 30
# A process leaving a group whose run failed waits this long for the others.
SHUTDOWN_TIMEOUT_S = 10
_RUN_BYTES = 128


def initialize(address: str, processes: int, index: int, timeout_s: int) -> None:
    """Join the group (process 0 starts its coordinator at `address`); raises
    if the others have not joined within `timeout_s`."""
    # CPU devices only; set before any backend exists (asking which one would create it).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # type: ignore[no-untyped-call]
    jax.distributed.initialize(
        address,
        num_processes=processes,
        process_id=index,
        initialization_timeout=timeout_s,
        heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S,
        shutdown_timeout_seconds=SHUTDOWN_TIMEOUT_S,
    )


def leader() -> bool:
    return jax.process_index() == 0


def agree(value: bool) -> bool:
    """Process 0's `value`, on every process (itself alone: as is)."""
    if jax.process_count() == 1:
        return value
    return bool(multihost_utils.broadcast_one_to_all(np.bool_(value)))


def share_run(run: str) -> str:
    """Process 0's `run` ("RUN_ID ATTEMPT"), on every process: which run the group trains."""
    raw = np.zeros(_RUN_BYTES, np.uint8)
    if leader():
        data = run.encode()
        raw[: len(data)] = np.frombuffer(data, np.uint8)
    shared = multihost_utils.broadcast_one_to_all(raw)
    return bytes(np.asarray(shared)).rstrip(b"\0").decode()
