"""A throwaway PostgreSQL for the tests and the scripts: initdb + pg_ctl from the
machine's binaries (Debian's postgresql package), on a free loopback port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path


class PostgresCluster:
    """A throwaway PostgreSQL started from the machine's binaries (initdb + pg_ctl),
    as the postgres user when the tests run as root (PostgreSQL refuses root)."""

    def __init__(self, root: Path) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        found = shutil.which("pg_ctl")
        pg_ctl = bins[-1] if bins else Path(found) if found else None
        if pg_ctl is None:
            raise FileNotFoundError("no PostgreSQL binaries (pg_ctl) on this machine")
        self.bin = pg_ctl.parent
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.data = root / "pgdata"
        root.mkdir(parents=True, exist_ok=True)
        if self.as_user:
            shutil.chown(root, "postgres")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self._root = root
        self.start()
        self._count = 0

    def start(self) -> None:
        """Starts the cluster (again, after `stop`: the same port and data)."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self._root}"
            " -c fsync=off -c synchronous_commit=off -c max_connections=400"
        )
        log = str(self._root / "pg.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-w", "-l", log, "start")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / tool), *args], check=True, capture_output=True
        )

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        self._count += 1
        name = f"t{self._count}"
        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self, mode: str = "immediate") -> None:
        """immediate: as a crash (and with synchronous_commit off, the newest commits
        may be lost); fast: a clean shutdown that disconnects every client."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "stop")
