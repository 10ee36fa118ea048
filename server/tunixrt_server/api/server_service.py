"""tunixrt.v1.ServerService: what this server is, runs with, and allows."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.metadata
import json
import logging
import sys
from typing import Any

from tunixrt.v1 import server_pb2, server_pb2_grpc, training_pb2

from ..config import Settings
from ..core.pagination import MAX_PAGE_SIZE
from ..core.presets import PRESETS
from ..core.rewards import REWARDS
from ..core.runspec import Hyperparameters
from .auth import current_caller
from .export_service import MAX_TRACE_NAMES
from .inference import MAX_PROMPTS

log = logging.getLogger("tunixrt.server")
PROBE = [sys.executable, "-m", "tunixrt_server.training.probe"]
PROBE_TIMEOUT_S = 300.0


async def probe_runtime() -> dict[str, Any]:
    """What a training worker here would use, from a process that imports JAX."""
    process = await asyncio.create_subprocess_exec(
        *PROBE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), PROBE_TIMEOUT_S)
    if process.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit code {process.returncode}")
    result: dict[str, Any] = json.loads(out)
    return result


class ServerService(server_pb2_grpc.ServerServiceServicer):
    def __init__(self, settings: Settings, auth_enabled: bool) -> None:
        self._settings = settings
        self._auth_enabled = auth_enabled
        self._probe: asyncio.Task[dict[str, Any]] | None = None

    def start(self) -> None:
        """Probe once, in the background: the first answers may say "probing"."""
        if self._settings.probe_runtime:
            self._probe = asyncio.create_task(probe_runtime())

    async def stop(self) -> None:
        if self._probe is not None and not self._probe.done():
            self._probe.cancel()

    def _runtime(self) -> tuple[dict[str, Any], str]:
        if self._probe is None:
            return {}, "disabled"
        if not self._probe.done():
            return {}, "probing"
        if self._probe.cancelled() or self._probe.exception() is not None:
            error = "cancelled" if self._probe.cancelled() else repr(self._probe.exception())
            return {}, f"probe failed: {error}"
        return self._probe.result(), "ok"

    async def GetServerInfo(
        self, request: server_pb2.GetServerInfoRequest, context: Any
    ) -> server_pb2.ServerInfo:
        runtime, status = self._runtime()
        caller = current_caller()
        counts = runtime.get("parameter_counts", {})
        s = self._settings
        return server_pb2.ServerInfo(
            server_version=importlib.metadata.version("tunix-rt-server"),
            api_package=server_pb2.DESCRIPTOR.package,
            library_versions=runtime.get("versions", {}),
            jax_backend=runtime.get("backend", ""),
            devices=[server_pb2.Device(**d) for d in runtime.get("devices", [])],
            presets=[
                server_pb2.ModelPreset(
                    name=name,
                    description=preset.description,
                    parameter_count=counts.get(name, 0),
                    needs_weights=preset.needs_weights,
                    max_context=preset.max_context,
                    default_hyperparameters=training_pb2.Hyperparameters(
                        **dataclasses.asdict(Hyperparameters.resolve({}, preset=name))
                    ),
                )
                for name, preset in PRESETS.items()
            ],
            limits=server_pb2.ServerLimits(
                max_receive_message_mb=s.max_receive_message_mb,
                max_send_message_mb=s.max_send_message_mb,
                max_stream_s=s.max_stream_s,
                max_concurrent_runs=s.max_concurrent_runs,
                max_queued_runs=s.max_queued_runs,
                max_inference_workers=s.max_inference_workers,
                max_page_size=MAX_PAGE_SIZE,
                max_export_trace_names=MAX_TRACE_NAMES,
                max_generate_prompts=MAX_PROMPTS,
            ),
            auth_enabled=self._auth_enabled,
            database="postgresql" if s.resolved_database_url.startswith("postgresql") else "sqlite",
            runtime_status=status,
            reward_functions=[
                server_pb2.RewardFunction(name=r.name, description=r.description)
                for r in REWARDS.values()
            ],
            caller_name=caller.name if caller else "",
            caller_role=caller.role if caller else "",
        )
