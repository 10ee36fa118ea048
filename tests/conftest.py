"""Shared fixtures: real `tunix-rt serve` processes on loopback with real database files."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tunixrt import Client
from tunixrt_server.training.child import share_compile_cache

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Tests never reach a model or dataset hub.
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One JAX compilation cache for the session, as one machine's runs share one: each
# shape compiles once, not once per test's fresh data dir (and for in-process JAX,
# which reads it at import, so it is set before any test module loads).
COMPILE_CACHE_ROOT = Path(tempfile.mkdtemp(prefix="tunixrt-tests-"))
share_compile_cache(COMPILE_CACHE_ROOT)
COMPILE_CACHE = Path(os.environ["JAX_COMPILATION_CACHE_DIR"])  # the one the processes use

ROOT = Path(__file__).resolve().parent.parent
# The throwaway PostgreSQL helper is shared with the scripts (soak.py).
sys.path.insert(0, str(ROOT / "scripts"))
from _postgres import PostgresCluster as PostgresCluster  # noqa: E402  (re-exported)

CORPUS = ROOT / "corpus"
TRACES_JSONL = CORPUS / "dev-reasoning-v2.jsonl"
EVAL_JSONL = CORPUS / "eval_v2.jsonl"
SERVE = [sys.executable, "-m", "tunixrt.cli", "serve"]


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    address: str
    data_dir: Path
    log_path: Path
    database_url: str

    def count(self, table: str) -> int:
        """Rows in a table, read straight from the server's database."""
        import sqlalchemy as sa

        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
        finally:
            engine.dispose()

    def client(self, **kwargs: object) -> Client:
        return Client(self.address, **kwargs)  # type: ignore[arg-type]

    def log(self) -> str:
        return self.log_path.read_text()

    @property
    def web_url(self) -> str:
        """The console's URL, from a server started with --web-address."""
        deadline = time.monotonic() + 30
        while (match := re.search(r"console on (\S+)", self.log())) is None:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"no web port:\n{self.log()}")
            time.sleep(0.05)
        return match.group(1)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return self.proc.returncode


def start_server(data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> ServerProcess:
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"server-{time.monotonic_ns()}.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [*SERVE, "--address", "127.0.0.1:0", "--data-dir", str(data_dir), *extra],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        # No runtime probe (a process importing JAX) per test server: CPU for the tests;
        # tests/test_server_info.py turns it on.
        env={**os.environ, "JAX_PLATFORMS": "cpu", "TUNIXRT_PROBE_RUNTIME": "0", **(env or {})},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(r"serving on (\S+:\d+)", log_path.read_text())
        if match:
            url = (env or {}).get("TUNIXRT_DATABASE_URL") or f"sqlite:///{data_dir / 'tunixrt.db'}"
            return ServerProcess(proc, match.group(1), data_dir, log_path, url)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"server did not start:\n{log_path.read_text()}")


def pytest_unconfigure(config: pytest.Config) -> None:
    # Under pytest-xdist the workers inherit the controller's cache directory (the
    # variable is set when this file first loads, in the controller): each process
    # removes the root it made, and the controller's, which they share, goes last.
    shutil.rmtree(COMPILE_CACHE_ROOT, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    # Not under pytest's tmp dir: that one is private to root, and the postgres
    # user must be able to reach its data directory.
    root = Path(tempfile.mkdtemp(prefix="tunixrt-pg-"))
    try:
        cluster = PostgresCluster(root)
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        stderr = getattr(exc, "stderr", b"") or b""
        pytest.skip(f"PostgreSQL unavailable: {exc} {stderr.decode(errors='replace')[-300:]}")
    yield cluster
    cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def backend() -> str:
    """sqlite by default; a module overrides this fixture to run against PostgreSQL too."""
    return "sqlite"


@pytest.fixture
def server_factory(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []
    cluster: PostgresCluster | None = (
        request.getfixturevalue("postgres") if backend == "postgresql" else None
    )

    def factory(
        *extra: str,
        data_dir: Path | None = None,
        env: dict[str, str] | None = None,
        database_url: str | None = None,
    ) -> ServerProcess:
        env = dict(env or {})
        url = database_url or (cluster.new_database() if cluster else None)
        if url:
            env["TUNIXRT_DATABASE_URL"] = url
        server = start_server(data_dir or tmp_path / f"data{len(started)}", *extra, env=env)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def server(server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    """A fresh server with an empty database, for this test alone."""
    return server_factory()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def refusing_server(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ServerProcess]:
    """One server per module and backend for the cases it must refuse, which leave
    its database empty (each asserts so): a server per case costs ~1.3 s."""
    env = {}
    if backend == "postgresql":
        env["TUNIXRT_DATABASE_URL"] = request.getfixturevalue("postgres").new_database()
    server = start_server(tmp_path_factory.mktemp("refusing"), env=env)
    yield server
    server.stop()


@pytest.fixture
def refusing_client(refusing_server: ServerProcess) -> Iterator[Client]:
    with refusing_server.client() as c:
        yield c


@pytest.fixture(scope="session")
def corpus_lines() -> list[bytes]:
    return [line for line in TRACES_JSONL.read_bytes().splitlines() if line.strip()]
