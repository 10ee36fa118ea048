"""Runs training workers for the server: scheduling, cancel, crash detection, wake-ups.

Lives in the server process and never imports JAX. The database is the source
of truth; the supervisor only starts processes, notices how they end, and tells
watchers when a run has something new (each line a worker prints).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path

from ..core.run_state import RunState
from ..storage import run_notify
from ..storage.runs import RunStore, StoredRun
from ..storage.traces import now_us
from . import checkpoints, child

log = logging.getLogger("tunixrt.training")
WORKER = [sys.executable, "-m", "tunixrt_server.training.worker"]
# How long a cancelled or stopped worker gets to save its checkpoint before SIGKILL.
STOP_GRACE_S = 60.0
# A RUNNING run whose worker has not written for this long has lost it.
ORPHAN_AFTER_S = 30.0


@dataclass
class _Worker:
    run_id: str
    attempt: int
    process: asyncio.subprocess.Process
    task: asyncio.Task[None] | None = None


class Supervisor:
    def __init__(
        self,
        runs: RunStore,
        database_url: str,
        data_dir: Path,
        max_concurrent: int,
        group: list[str] | None = None,
    ) -> None:
        """`group`: the worker-group arguments of process 0 (training/group.py), whose
        runs span every process of the group."""
        self._runs = runs
        self._group = group or []
        self._database_url = database_url
        self._data_dir = data_dir
        self._max_concurrent = max_concurrent
        self._workers: dict[str, _Worker] = {}
        # Runs whose worker has exited and whose end is not yet written: (attempt, why).
        self._unrecorded: dict[str, tuple[int, str]] = {}
        # Per run: a counter bumped on every change, and the watchers waiting for one.
        self._versions: defaultdict[str, int] = defaultdict(int)
        self._waiters: defaultdict[str, set[asyncio.Future[None]]] = defaultdict(set)
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._listener: run_notify.Listener | None = None

    def run_dir(self, run_id: str) -> Path:
        return checkpoints.run_dir(self._data_dir, run_id)

    # -- lifecycle --

    async def start(self) -> None:
        self._loop_task = asyncio.create_task(self._schedule_loop())
        # Runs written by other processes (PostgreSQL): watchers see their events at
        # once, and a run queued on another server is claimed without waiting a poll.
        loop = asyncio.get_running_loop()

        def on_change(run_id: str, state_changed: bool) -> None:  # on the listener's thread
            loop.call_soon_threadsafe(self._changed_elsewhere, run_id, state_changed)

        self._listener = self._runs.listener(on_change)
        if self._listener:
            self._listener.start()

    def _changed_elsewhere(self, run_id: str, state_changed: bool) -> None:
        self.changed(run_id)
        if state_changed:  # e.g. queued: steps of runs elsewhere need no scheduling
            self.wake()

    async def stop(self) -> None:
        """SIGTERM every worker (each saves a checkpoint and ends its run FAILED,
        resumable); SIGKILL those still running after STOP_GRACE_S."""
        if self._loop_task:
            self._loop_task.cancel()
        if self._listener:
            await asyncio.to_thread(self._listener.stop)
        workers = list(self._workers.values())
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
        tasks = [w.task for w in workers if w.task]
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_GRACE_S)
        for worker in workers:
            self._kill(worker)

    def wake(self) -> None:
        self._wake.set()

    async def _schedule_loop(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # still refused: _follow logged why
                await self._record_ends()
            try:
                await self._fail_orphans()
                await self._start_queued()
            except Exception:
                log.exception("scheduling training runs failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=2.0)
            self._wake.clear()

    async def _fail_orphans(self) -> None:
        """RUNNING runs whose worker went silent (its server died, or it did without
        the server noticing) end FAILED, so no run stays RUNNING without a worker."""
        cutoff = now_us() - int(ORPHAN_AFTER_S * 1e6)
        for run in await asyncio.to_thread(self._runs.stale_running, cutoff):
            if run.id in self._workers:
                continue  # ours and alive; _follow handles its end
            step = int(run.metrics.get("step", 0))
            ended = await asyncio.to_thread(
                self._runs.transition,
                run.id,
                RunState.FAILED,
                f"interrupted: its worker stopped reporting at step {step} (the server or the "
                f"worker died); ResumeTrainingRun continues from checkpoint step "
                f"{run.checkpoint_step}",
                from_states=(RunState.RUNNING,),
                owner_attempt=run.attempt,
                step=step,
            )
            if ended is not None:
                log.warning("run %s: worker silent; marked FAILED", run.id)
                self.changed(run.id)

    async def _start_queued(self) -> None:
        while len(self._workers) < self._max_concurrent:
            claimed = await asyncio.to_thread(self._runs.claim_next)
            if claimed is None:
                return
            await self._launch(claimed)

    async def _launch(self, run: StoredRun) -> None:
        run_dir = self.run_dir(run.id)
        run_dir.mkdir(parents=True, exist_ok=True)
        log_path = run_dir / "worker.log"
        with log_path.open("ab") as log_file:
            process = await asyncio.create_subprocess_exec(
                *WORKER,
                "train",
                run.id,
                str(run.attempt),
                "--database-url",
                self._database_url,
                "--run-dir",
                str(run_dir),
                "--parent-pid",
                str(os.getpid()),
                *self._group,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
            )
        worker = _Worker(run.id, run.attempt, process)
        self._workers[run.id] = worker
        self.changed(run.id)
        worker.task = asyncio.create_task(self._follow(worker, log_path))
        log.info("run %s attempt %d: worker pid %d", run.id, run.attempt, process.pid)

    async def _follow(self, worker: _Worker, log_path: Path) -> None:
        assert worker.process.stdout is not None
        try:
            while await worker.process.stdout.readline():
                self.changed(worker.run_id)
            code = await worker.process.wait()
            self._unrecorded[worker.run_id] = (
                worker.attempt,
                f"worker {_describe_exit(code)}{_disk_note(log_path.parent, code)}; "
                f"last log lines: {_tail(log_path)}",
            )
            await self._record_ends()
        except Exception:
            # The database refused (a full disk, say): the schedule loop tries again.
            log.exception("run %s: could not record how its worker ended", worker.run_id)
        finally:
            self._workers.pop(worker.run_id, None)
            self.changed(worker.run_id)
            self.wake()

    async def _record_ends(self) -> None:
        """Ends FAILED the runs whose worker exited without ending them (it crashed, was
        killed, or could not write). Kept until the database takes the write, so after
        a full disk the run ends with its worker's reason as soon as there is room,
        not a heartbeat timeout later."""
        for run_id, (attempt, message) in list(self._unrecorded.items()):
            ended = await asyncio.to_thread(
                self._runs.transition,
                run_id,
                RunState.FAILED,
                message,
                from_states=(RunState.RUNNING,),
                owner_attempt=attempt,  # only if the worker did not end it itself
            )
            self._unrecorded.pop(run_id, None)  # _follow and the loop may both get here
            if ended is not None:
                log.warning("run %s: %s", run_id, message.split(";")[0])

    async def cancel(self, run_id: str) -> None:
        """Ask a local worker to stop now; the cancel flag in the database covers
        workers of other server processes."""
        worker = self._workers.get(run_id)
        if worker is None:
            return
        with contextlib.suppress(ProcessLookupError):
            worker.process.send_signal(signal.SIGUSR1)
        asyncio.get_running_loop().call_later(STOP_GRACE_S, self._kill, worker)

    @staticmethod
    def _kill(worker: _Worker) -> None:
        if worker.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()

    # -- change notification --

    def changed(self, run_id: str) -> None:
        self._versions[run_id] += 1
        for waiter in self._waiters.pop(run_id, ()):
            if not waiter.done():
                waiter.set_result(None)

    def version(self, run_id: str) -> int:
        """Read before reading a run's events; pass to wait_for_change after."""
        return self._versions[run_id]

    async def wait_for_change(self, run_id: str, seen: int, timeout: float) -> None:
        """Returns once the run changed after version `seen` was read (at once if it
        already has), or after `timeout`: a safety net for events written by another
        server process."""
        if self._versions[run_id] != seen:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[run_id].add(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            pass
        finally:
            waiting = self._waiters.get(run_id)
            if waiting is not None:
                waiting.discard(waiter)
                if not waiting:
                    del self._waiters[run_id]


def _describe_exit(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


# Less free space than this when a worker dies: it most likely died of it (and
# could not even log why), so the run's message says so.
_DISK_NEARLY_FULL = 1024 * 1024


def _disk_note(run_dir: Path, code: int) -> str:
    if code == child.DISK_FULL_EXIT:
        return " because the disk is full"
    try:
        free = shutil.disk_usage(run_dir).free
    except OSError:
        return ""
    if free >= _DISK_NEARLY_FULL:
        return ""
    return f" while the disk is full ({free:,} bytes free under {run_dir})"


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = deque(path.read_text(errors="replace").splitlines(), maxlen=lines)
    except OSError:
        return "(no log)"
    return " | ".join(text) or "(empty log)"
