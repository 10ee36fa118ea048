"""Settings: defaults < YAML file < TUNIXRT_* environment variables < command-line flags."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .storage.db import sqlite_url


class ConfigError(Exception):
    pass


@dataclass
class Settings:
    # Where to listen; port 0 picks a free port (printed at start).
    address: str = "127.0.0.1:50051"
    # Holds the SQLite database, checkpoints and worker logs.
    data_dir: Path = Path("tunixrt-data")
    # SQLAlchemy URL; empty means SQLite in data_dir.
    database_url: str = ""
    # Threads running blocking database work.
    max_workers: int = 32
    # Largest request message (a trace of 1,000 full steps is ~20 MB).
    max_receive_message_mb: int = 64
    # Largest response message.
    max_send_message_mb: int = 4
    # Seconds in-flight calls get to finish on SIGTERM/SIGINT.
    shutdown_grace_s: float = 5.0
    # Training runs that may train at once in this process's workers; 0: none
    # (an API-only server, with `tunix-rt worker` processes training elsewhere).
    max_concurrent_runs: int = 1
    # Longest a server-streaming call (export, watch) may run; 0 means no limit.
    # A watcher that hits it resumes with after_sequence.
    max_stream_s: float = 6 * 3600.0
    # Runs that may wait in QUEUED; CreateTrainingRun beyond it is RESOURCE_EXHAUSTED.
    max_queued_runs: int = 100
    # The highest peak learning rate a run may ask for (above 1.0 AdamW diverges on
    # every preset here); an operator may raise it for their own experiments.
    max_learning_rate: float = 1.0
    # A worker group (`tunix-rt worker` only): processes, usually one per host,
    # that train each run together with jax.distributed. coordinator_address is
    # HOST:PORT where process 0 listens; process_id is this process's place.
    coordinator_address: str = ""
    num_processes: int = 1
    process_id: int = 0
    # HOST:PORT to serve Prometheus metrics on (port 0 picks one); empty: off.
    metrics_address: str = ""
    # HOST:PORT for the browser console and gRPC-Web (port 0 picks one); empty: off.
    # Same auth and limits as the gRPC port; TLS too when tls_* are set.
    web_address: str = ""
    # Probe the JAX runtime once at start (a process that imports JAX) for
    # GetServerInfo's versions, devices and parameter counts.
    probe_runtime: bool = True
    # Runs whose model stays loaded for Generate/EvaluateRun (one process each),
    # and the seconds an unused one stays.
    max_inference_workers: int = 2
    inference_idle_s: float = 300.0
    # Bearer tokens as (name, role, token); none means no auth. YAML: a list of
    # {name, role, token}; env TUNIXRT_TOKENS: "name:role:token,name:role:token".
    tokens: list[tuple[str, str, str]] = field(default_factory=list)
    # PEM files; both set means TLS only.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or sqlite_url(self.data_dir.resolve())


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "extra"}


def _tokens(value: Any) -> list[tuple[str, str, str]]:
    if isinstance(value, str):
        value = [
            dict(zip(("name", "role", "token"), item.split(":", 2), strict=False))
            for item in value.split(",")
            if item.strip()
        ]
    if not isinstance(value, list):
        raise ConfigError("setting 'tokens': a list of {name, role, token}")
    out = []
    for item in value:
        if not isinstance(item, dict) or not {"name", "role", "token"} <= set(item):
            raise ConfigError(f"setting 'tokens': {item!r} needs name, role and token")
        if item["role"] not in ("reader", "writer"):
            raise ConfigError(
                f"setting 'tokens': role of {item['name']!r} must be reader or writer"
            )
        if not str(item["token"]):
            raise ConfigError(f"setting 'tokens': token of {item['name']!r} is empty")
        out.append((str(item["name"]), str(item["role"]), str(item["token"])))
    return out


def _coerce(name: str, value: Any) -> Any:
    if name == "tokens":
        return _tokens(value)
    kind = {"address": str, "database_url": str, "data_dir": Path}.get(name)
    default = getattr(Settings(), name)
    if isinstance(default, bool) and isinstance(value, str):  # bool("false") is True
        if value.strip().lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ConfigError(f"setting {name!r}: cannot use {value!r} as a boolean")
        return value.strip().lower() in ("1", "true", "yes", "on")
    try:
        if kind is not None:
            return kind(value)
        return type(default)(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"setting {name!r}: cannot use {value!r} as {type(default).__name__}"
        ) from None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {}
    path = config_file or (
        Path(os.environ["TUNIXRT_CONFIG"]) if os.environ.get("TUNIXRT_CONFIG") else None
    )
    if path is not None:
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"config file {path} must hold a YAML mapping")
        unknown = sorted(set(doc) - set(_FIELDS))
        if unknown:
            raise ConfigError(
                f"config file {path}: unknown setting(s) {unknown}; known: {sorted(_FIELDS)}"
            )
        values.update(doc)
    for name in _FIELDS:
        env = os.environ.get(f"TUNIXRT_{name.upper()}")
        if env is not None:
            values[name] = env
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**{k: _coerce(k, v) for k, v in values.items()})
