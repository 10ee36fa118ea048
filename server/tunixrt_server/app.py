"""Builds and runs the gRPC server: services, health, reflection, graceful shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlalchemy import Engine

from tunixrt.v1 import (
    dataset_pb2,
    dataset_pb2_grpc,
    export_pb2,
    export_pb2_grpc,
    server_pb2,
    server_pb2_grpc,
    trace_pb2,
    trace_pb2_grpc,
    training_pb2,
    training_pb2_grpc,
)

from .api import metrics
from .api.auth import Authorizer
from .api.batch_parser import BatchParser
from .api.dataset_service import DatasetService
from .api.export_service import ExportService
from .api.interceptors import ErrorInterceptor
from .api.server_service import ServerService
from .api.trace_service import TraceService
from .api.training_service import TrainingService
from .config import Settings
from .storage.datasets import DatasetStore
from .storage.db import create_engine, describe_url, migrate
from .storage.runs import RunStore
from .storage.traces import TraceStore
from .training import child
from .training.inference_pool import InferencePool
from .training.supervisor import Supervisor

if TYPE_CHECKING:  # the web port (aiohttp, ~0.35 s to import) loads only when it is on
    from .api import web_bridge

log = logging.getLogger("tunixrt.server")


@dataclass
class Services:
    """The servicers of one server and the workers behind them, built from settings."""

    traces: TraceService
    datasets: DatasetService
    export: ExportService
    training: TrainingService
    info: ServerService
    runs: RunStore
    supervisor: Supervisor
    inference: InferencePool

    def add_to(self, server: Any) -> None:
        trace_pb2_grpc.add_TraceServiceServicer_to_server(self.traces, server)
        dataset_pb2_grpc.add_DatasetServiceServicer_to_server(self.datasets, server)
        export_pb2_grpc.add_ExportServiceServicer_to_server(self.export, server)
        training_pb2_grpc.add_TrainingServiceServicer_to_server(self.training, server)
        server_pb2_grpc.add_ServerServiceServicer_to_server(self.info, server)

    @staticmethod
    def descriptors() -> tuple[ServiceDescriptor, ...]:
        return tuple(
            module.DESCRIPTOR.services_by_name[name]
            for module, name in (
                (trace_pb2, "TraceService"),
                (dataset_pb2, "DatasetService"),
                (export_pb2, "ExportService"),
                (training_pb2, "TrainingService"),
                (server_pb2, "ServerService"),
            )
        )


SERVICE_NAMES = tuple(descriptor.full_name for descriptor in Services.descriptors())


def build_services(settings: Settings, engine: Engine, *, auth_enabled: bool) -> Services:
    trace_store = TraceStore(engine)
    runs = RunStore(engine)
    dataset_store = DatasetStore(engine)
    supervisor = Supervisor(
        runs,
        settings.resolved_database_url,
        settings.data_dir.resolve(),
        settings.max_concurrent_runs,
    )
    inference = InferencePool(settings.max_inference_workers, settings.inference_idle_s)
    training = TrainingService(
        runs,
        dataset_store,
        supervisor,
        inference,
        settings.data_dir,
        settings.max_queued_runs,
        settings.max_learning_rate,
    )
    return Services(
        traces=TraceService(trace_store, BatchParser()),
        datasets=DatasetService(dataset_store, runs),
        export=ExportService(dataset_store, trace_store),
        training=training,
        info=ServerService(settings, auth_enabled=auth_enabled),
        runs=runs,
        supervisor=supervisor,
        inference=inference,
    )


@dataclass
class RunningServer:
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    services: Services
    port: int
    metrics_port: int | None = None
    web: web_bridge.WebPort | None = None


CONSOLE_DIR = Path(__file__).parent / "console"


async def start(settings: Settings) -> RunningServer:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.resolved_database_url, pool_size=settings.max_workers)
    await asyncio.to_thread(migrate, engine)
    child.share_compile_cache(settings.data_dir.resolve())

    authorizer = Authorizer(settings.tokens)
    mb = 1024 * 1024
    server = grpc.aio.server(
        interceptors=[
            ErrorInterceptor(
                authorizer,
                settings.max_stream_s,
                describe_url(settings.resolved_database_url),
            )
        ],
        options=[
            ("grpc.max_receive_message_length", settings.max_receive_message_mb * mb),
            ("grpc.max_send_message_length", settings.max_send_message_mb * mb),
            # Fail loudly when the port is taken instead of sharing it.
            ("grpc.so_reuseport", 0),
        ],
    )
    services = build_services(settings, engine, auth_enabled=authorizer.enabled)
    services.add_to(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    try:
        port = _listen(server, settings)
    except RuntimeError as exc:
        raise SystemExit(f"tunix-rt: cannot listen on {settings.address}: {exc}") from None
    # The web port's calls come in through a socket only this process can open.
    socket_dir = tempfile.mkdtemp(prefix="tunixrt-web-") if settings.web_address else ""
    if socket_dir:
        from .api import web_bridge

        server.add_insecure_port(web_bridge.socket_target(socket_dir))
    await server.start()
    await services.supervisor.start()
    services.info.start()
    metrics_port = (
        metrics.serve(settings.metrics_address, services.runs) if settings.metrics_address else None
    )
    web = (
        await web_bridge.start(settings, Services.descriptors(), socket_dir, CONSOLE_DIR)
        if socket_dir
        else None
    )
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server, health_servicer, services, port, metrics_port, web)


def _listen(server: grpc.aio.Server, settings: Settings) -> int:
    if not (settings.tls_cert_file or settings.tls_key_file):
        return server.add_insecure_port(settings.address)
    try:
        key = Path(settings.tls_key_file).read_bytes()
        cert = Path(settings.tls_cert_file).read_bytes()
    except OSError as exc:
        raise SystemExit(f"tunix-rt: TLS needs tls_cert_file and tls_key_file: {exc}") from None
    credentials = grpc.ssl_server_credentials([(key, cert)])
    return server.add_secure_port(settings.address, credentials)


def _quiet_gc() -> None:
    """Import and export make several short-lived containers per trace. At CPython's
    default thresholds the collector ran every 700 of them, and each full collection
    rescanned everything the server loaded at start (gRPC, SQLAlchemy, protobuf):
    gc.freeze() puts that out of its sight for good, and young collections run
    every 10,000. Measured alternating with and without (scripts/bench_export.py,
    bench_ingest.py): ExportDataset +24%, ImportTraces +10%."""
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


async def serve(settings: Settings) -> None:
    loop = asyncio.get_running_loop()
    loop.set_default_executor(
        ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="tunixrt")
    )
    running = await start(settings)
    _quiet_gc()
    host = settings.address.rsplit(":", 1)[0]
    print(f"tunix-rt serving on {host}:{running.port} (data dir {settings.data_dir})", flush=True)
    if running.metrics_port is not None:
        metrics_host = settings.metrics_address.rpartition(":")[0]
        print(f"metrics on http://{metrics_host}:{running.metrics_port}/metrics", flush=True)
    if running.web is not None:
        print(f"console on {running.web.url}", flush=True)

    await until_signalled()
    log.info("shutting down; in-flight calls get %.0fs", settings.shutdown_grace_s)
    await running.health.enter_graceful_shutdown()
    await running.server.stop(grace=settings.shutdown_grace_s)
    if running.web is not None:
        await running.web.stop()
    await running.services.supervisor.stop()
    await running.services.inference.close()
    running.services.traces.close()
    await running.services.info.stop()
    print("tunix-rt stopped", flush=True)


async def until_signalled() -> None:
    """Returns at the first SIGTERM or SIGINT (the server's and the worker's stop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def run(settings: Settings) -> None:
    configure_logging()
    asyncio.run(serve(settings))
