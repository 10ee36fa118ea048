"""`tunix-rt worker`: trains runs queued through any API server, with no API of its own.

It is the API server's Supervisor without the gRPC server: it claims QUEUED runs
from the shared database (FOR UPDATE SKIP LOCKED, so each run is claimed once),
starts one training process per run, and fails runs whose worker went silent.
The training processes write events and heartbeats to the database, where every
API server's WatchTrainingRun reads them; checkpoints go under the data dir,
which the API servers must see at the same path to serve Generate and Resume.
"""

from __future__ import annotations

import asyncio
import logging
import os

from .app import configure_logging, until_signalled
from .config import ConfigError, Settings
from .storage.db import create_engine, current_revision, head_revision
from .storage.runs import RunStore
from .training import child
from .training import group as worker_group
from .training.group import Follower, Group
from .training.supervisor import Supervisor

log = logging.getLogger("tunixrt.worker")


class SchemaMismatch(Exception):
    pass


async def serve(settings: Settings, group: Group | None) -> None:
    engine = create_engine(settings.resolved_database_url, pool_size=4)
    # API servers migrate at start; a worker only checks, so two versions never
    # race to migrate the same database.
    have, want = await asyncio.to_thread(current_revision, engine), head_revision()
    if have != want:
        raise SchemaMismatch(
            f"the database is at schema {have or 'none'} and this worker needs {want}: "
            "start an API server of this version on it first (it migrates)"
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    data_dir = settings.data_dir.resolve()
    child.share_compile_cache(data_dir)
    if group is not None and group.index > 0:
        worker: Supervisor | Follower = Follower(group, settings.resolved_database_url, data_dir)
        role = f"process {group.index} of {group.processes}, following {group.address}"
    else:
        worker = Supervisor(
            RunStore(engine),
            settings.resolved_database_url,
            data_dir,
            settings.max_concurrent_runs,
            group.args() if group else None,
        )
        role = f"taking up to {settings.max_concurrent_runs} run(s)" + (
            f" over {group.processes} processes, coordinator {group.address}" if group else ""
        )
    await worker.start()
    print(f"tunix-rt worker {os.getpid()} {role} (data dir {settings.data_dir})", flush=True)
    await until_signalled()
    log.info("stopping: running runs save a checkpoint and end FAILED, resumable")
    await worker.stop()
    engine.dispose()
    print("tunix-rt worker stopped", flush=True)


def run(settings: Settings) -> None:
    configure_logging()
    try:
        asyncio.run(serve(settings, worker_group.of(settings)))
    except (SchemaMismatch, ConfigError) as exc:
        raise SystemExit(f"tunix-rt worker: {exc}") from None
