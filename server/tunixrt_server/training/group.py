"""A worker group: `tunix-rt worker` processes, one per host, that train each run together.

Process 0 is a worker like any other, taking one run at a time: it claims the
run, and its training process starts the JAX coordinator at the group's address
and writes the run's events. Every other process claims nothing: it keeps one
training process (`worker follow`) waiting to join that coordinator; once all
have joined, process 0 tells them which run it is, they train the same steps
on their own devices, and they write nothing but their checkpoint shards. So the
run directory must be on storage every host sees at the same path.

Lives in the worker process and never imports JAX.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError, Settings
from .supervisor import STOP_GRACE_S, WORKER

log = logging.getLogger("tunixrt.group")
# At least this long between following processes, so one that cannot even
# try to join (a wrong address) is not restarted in a tight loop.
RESTART_EVERY_S = 10.0


@dataclass(frozen=True)
class Group:
    address: str  # HOST:PORT of process 0's coordinator
    processes: int
    index: int

    def args(self) -> list[str]:
        return ["--distributed", self.address, str(self.processes), str(self.index)]


def of(settings: Settings) -> Group | None:
    """The worker group the settings put this process in; None: on its own."""
    count, index = settings.num_processes, settings.process_id
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"process_id {index} must be in [0, num_processes {count})")
    if count == 1:
        return None
    if not settings.coordinator_address:
        raise ConfigError(
            f"num_processes {count} needs coordinator_address: HOST:PORT where process 0 listens"
        )
    if settings.max_concurrent_runs != 1:
        raise ConfigError("a worker group trains one run at a time: max_concurrent_runs must be 1")
    return Group(settings.coordinator_address, count, index)


class Follower:
    """Process `index` > 0 of a group: one `worker follow` process after another."""

    def __init__(self, group: Group, database_url: str, data_dir: Path) -> None:
        self._group = group
        self._database_url = database_url
        self._data_dir = data_dir
        self._process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        log_path = self._data_dir / f"follower-{self._group.index}.log"
        while True:
            started = time.monotonic()
            with log_path.open("ab") as log_file:
                self._process = await asyncio.create_subprocess_exec(
                    *WORKER,
                    "follow",
                    *self._group.args(),
                    "--database-url",
                    self._database_url,
                    "--data-dir",
                    str(self._data_dir),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=log_file,
                )
            code = await self._process.wait()
            if code:
                log.warning("following process exited with code %d (see %s)", code, log_path)
            await asyncio.sleep(max(0.0, started + RESTART_EVERY_S - time.monotonic()))

    async def stop(self) -> None:
        """A process waiting to join ends at once. One training a run keeps to
        process 0's steps for up to STOP_GRACE_S (the run may be ending: its final
        checkpoint needs every process); after that it is killed, and process 0
        fails the run within its heartbeat timeout, to resume once the group is whole."""
        if self._task:
            self._task.cancel()
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
