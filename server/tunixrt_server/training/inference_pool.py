"""Resident inference workers for the server: one process per run, reused across calls.

The first Generate/EvaluateRun on a run starts `inference_worker` for it (JAX
import, restore, compile: seconds on a CPU); later calls reuse it and take
milliseconds. At most `max_workers` stay resident (the least recently used
goes first), each leaves after `idle_s` without a call, and all leave when
their run is deleted or the server stops. Lives in the server and never
imports JAX.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("tunixrt.inference")
WORKER = [sys.executable, "-m", "tunixrt_server.training.inference_worker"]
STOP_GRACE_S = 5.0


class InferenceError(Exception):
    pass


@dataclass
class _Resident:
    run_id: str
    process: asyncio.subprocess.Process
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_used: float = field(default_factory=time.monotonic)
    log_path: Path | None = None


class InferencePool:
    def __init__(self, max_workers: int = 2, idle_s: float = 300.0) -> None:
        self._max = max(1, max_workers)
        self._idle_s = idle_s
        self._residents: OrderedDict[str, _Resident] = OrderedDict()
        self._reaper: asyncio.Task[None] | None = None

    def resident(self) -> list[str]:
        return list(self._residents)

    async def call(
        self, run_id: str, run_dir: Path, request: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        """One request to the run's resident worker (started if needed). A worker that
        died is replaced once; one that times out is killed (it may be stuck)."""
        for attempt in (1, 2):
            resident = await self._get(run_id, run_dir)
            async with resident.lock:
                resident.last_used = time.monotonic()
                try:
                    answer = await asyncio.wait_for(self._ask(resident, request), timeout)
                except (TimeoutError, asyncio.CancelledError):
                    await self._evict(run_id, resident, kill=True)
                    raise
                except (ConnectionError, EOFError) as exc:
                    await self._evict(run_id, resident, kill=True)
                    if attempt == 2:
                        raise InferenceError(f"the inference worker died: {exc}") from None
                    continue
                resident.last_used = time.monotonic()
            if "error" in answer:
                raise InferenceError(answer["error"])
            return answer
        raise AssertionError("unreachable")

    @staticmethod
    async def _ask(resident: _Resident, request: dict[str, Any]) -> dict[str, Any]:
        process = resident.process
        assert process.stdin is not None and process.stdout is not None
        if process.returncode is not None:
            raise ConnectionError(f"exit code {process.returncode}")
        process.stdin.write(json.dumps(request).encode() + b"\n")
        await process.stdin.drain()
        line = await process.stdout.readline()
        if not line:
            await process.wait()
            raise EOFError(f"exit code {process.returncode}; see {resident.log_path}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def _get(self, run_id: str, run_dir: Path) -> _Resident:
        resident = self._residents.get(run_id)
        if resident is not None and resident.process.returncode is None:
            self._residents.move_to_end(run_id)
            return resident
        if resident is not None:
            self._residents.pop(run_id, None)
        while len(self._residents) >= self._max:
            oldest_id, oldest = next(iter(self._residents.items()))
            await self._evict(oldest_id, oldest)
        log_path = run_dir / "inference.log"
        with log_path.open("ab") as log_file:
            process = await asyncio.create_subprocess_exec(
                *WORKER,
                "--run-dir",
                str(run_dir),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
                limit=64 * 1024 * 1024,  # one answer is one line
            )
        resident = _Resident(run_id, process, log_path=log_path)
        self._residents[run_id] = resident
        log.info("run %s: inference worker pid %d", run_id, process.pid)
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap_idle())
        return resident

    async def _evict(self, run_id: str, resident: _Resident, *, kill: bool = False) -> None:
        if self._residents.get(run_id) is resident:
            del self._residents[run_id]
        process = resident.process
        if process.returncode is not None:
            return
        if kill:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        elif process.stdin is not None:
            process.stdin.close()  # the worker leaves at end of input
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def _reap_idle(self) -> None:
        while self._residents:
            await asyncio.sleep(min(self._idle_s, 30.0))
            now = time.monotonic()
            for run_id, resident in list(self._residents.items()):
                if not resident.lock.locked() and now - resident.last_used > self._idle_s:
                    log.info("run %s: inference worker idle; stopping it", run_id)
                    await self._evict(run_id, resident)

    async def release(self, run_id: str) -> None:
        """The run is gone: its worker goes too."""
        resident = self._residents.get(run_id)
        if resident is not None:
            await self._evict(run_id, resident)

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        await asyncio.gather(
            *(self._evict(run_id, r) for run_id, r in list(self._residents.items()))
        )
