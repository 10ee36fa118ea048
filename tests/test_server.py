"""Server plumbing: reflection and health through grpcurl, config sources, migrations."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import ServerProcess
from tunixrt_server.config import ConfigError, load_settings
from tunixrt_server.storage.db import create_engine, current_revision, head_revision, migrate

GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or "grpcurl"


def grpcurl(address: str, *args: str, data: object = None) -> subprocess.CompletedProcess[str]:
    cmd = [GRPCURL, "-plaintext"]
    if data is not None:
        cmd += ["-d", json.dumps(data)]
    return subprocess.run([*cmd, address, *args], capture_output=True, text=True, timeout=30)


def test_grpcurl_lists_services_without_proto_files(server: ServerProcess) -> None:
    out = grpcurl(server.address, "list")
    assert out.returncode == 0, out.stderr
    assert set(out.stdout.split()) == {
        "tunixrt.v1.TraceService",
        "tunixrt.v1.DatasetService",
        "tunixrt.v1.ExportService",
        "tunixrt.v1.TrainingService",
        "tunixrt.v1.ServerService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    described = grpcurl(server.address, "describe", "tunixrt.v1.Trace")
    assert "final_answer" in described.stdout


def test_health_probe(server: ServerProcess) -> None:
    for service in ("", "tunixrt.v1.TraceService"):
        out = grpcurl(server.address, "grpc.health.v1.Health/Check", data={"service": service})
        assert out.returncode == 0 and json.loads(out.stdout) == {"status": "SERVING"}


def test_grpcurl_create_and_error_details(server: ServerProcess) -> None:
    trace = {
        "prompt": "2+2?",
        "final_answer": "4",
        "steps": [{"i": 0, "type": "calc", "content": "4"}],
    }
    out = grpcurl(server.address, "tunixrt.v1.TraceService/CreateTrace", data={"trace": trace})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["name"].startswith("traces/")
    bad = grpcurl(
        server.address, "tunixrt.v1.TraceService/CreateTrace", data={"trace": {"final_answer": "4"}}
    )
    assert "InvalidArgument" in bad.stderr and '"field":"trace.prompt"' in bad.stderr.replace(
        " ", ""
    )


def test_busy_port_fails_clearly(server: ServerProcess, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tunixrt.cli",
            "serve",
            "--address",
            server.address,
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "cannot listen on" in result.stderr


def test_settings_layering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "tunixrt.yaml"
    config.write_text("address: 0.0.0.0:6000\ndata_dir: /srv/rt\nmax_workers: 8\n")
    settings = load_settings(config)
    assert (settings.address, settings.data_dir, settings.max_workers) == (
        "0.0.0.0:6000",
        Path("/srv/rt"),
        8,
    )
    assert settings.resolved_database_url == "sqlite:////srv/rt/tunixrt.db"
    monkeypatch.setenv("TUNIXRT_MAX_WORKERS", "4")
    monkeypatch.setenv("TUNIXRT_DATABASE_URL", "postgresql+psycopg://db/rt")
    settings = load_settings(config, address="127.0.0.1:1")
    assert (settings.address, settings.max_workers) == ("127.0.0.1:1", 4)
    assert settings.resolved_database_url == "postgresql+psycopg://db/rt"
    config.write_text("adress: typo\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(config)
    monkeypatch.setenv("TUNIXRT_MAX_WORKERS", "many")
    with pytest.raises(ConfigError, match="max_workers"):
        load_settings()


def test_serve_reads_config_file(
    server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    data_dir = tmp_path / "from-yaml"
    config = tmp_path / "c.yaml"
    config.write_text(f"data_dir: {data_dir}\n")
    server = server_factory("--config", str(config))
    # --data-dir on the command line wins over the file
    assert server.data_dir != data_dir and (server.data_dir / "tunixrt.db").exists()


def test_migrations_upgrade_existing_database(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO traces (id, create_time_us, trace_version, prompt, final_answer,"
                " steps_json, meta,"
                " source, category, step_count, char_count)"
                " VALUES ('t1', 1, '1.0', 'p', 'a', '[]', '{}', '', '', 0, 2)"
            )
        )
    migrate(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT prompt FROM traces WHERE id='t1'")).scalar() == "p"
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
    migrate(engine)  # idempotent
