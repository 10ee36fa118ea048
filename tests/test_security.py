"""Auth, TLS, and requests that try to escape the data dir or inject SQL."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import TRACES_JSONL, ServerProcess
from tunixrt import (
    Client,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from tunixrt.v1 import trace_pb2

TOKENS = "alice:writer:w-secret,bob:reader:r-secret"


def _trace(prompt: str = "What is 2 + 2?") -> trace_pb2.Trace:
    return trace_pb2.Trace(prompt=prompt, final_answer="4")


def test_tokens_and_roles(server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory(env={"TUNIXRT_TOKENS": TOKENS})
    with grpc.insecure_channel(server.address) as channel:  # health stays open
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING

    with server.client() as anonymous, pytest.raises(Unauthenticated, match="Bearer"):
        next(anonymous.list_traces())
    with server.client(token="nope") as stranger, pytest.raises(Unauthenticated, match="unknown"):
        next(stranger.list_traces())

    with server.client(token="w-secret") as writer:
        created = writer.create_trace(_trace())
        writer.import_jsonl(TRACES_JSONL)
        writer.build_dataset("sec", "v1", limit=20)
    with server.client(token="r-secret") as reader:
        assert reader.get_trace(created.name).prompt == created.prompt
        assert len(list(reader.list_traces(page_size=1000))) == 551
        assert reader.get_dataset("sec-v1").stats.trace_count == 20
        for write in (
            lambda: reader.delete_trace(created.name),
            lambda: reader.create_trace(_trace()),
            lambda: reader.build_dataset("sec", "v2"),
            lambda: reader.create_training_run("sec-v1"),
        ):
            with pytest.raises(PermissionDenied, match="needs 'writer'") as err:
                write()
            assert err.value.reason == "WRITER_ROLE_REQUIRED"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway CA-less certificate for 127.0.0.1 / localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls(server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server = server_factory(
        env={"TUNIXRT_TLS_CERT_FILE": str(cert), "TUNIXRT_TLS_KEY_FILE": str(key)}
    )
    with Client(server.address, root_certificates=cert.read_bytes()) as secure:
        assert secure.create_trace(_trace()).name.startswith("traces/")
    with Client(server.address, timeout=3) as plaintext, pytest.raises(Unavailable):
        next(plaintext.list_traces())


def test_names_and_paths_cannot_escape(client: Client) -> None:
    client.import_jsonl(TRACES_JSONL)
    for key in ("../etc", "a/b", "..", "x..y", "/abs", "UPPER", "a\\b", "a b", ""):
        with pytest.raises(InvalidArgument):
            client.build_dataset(key, "v1")
        with pytest.raises(InvalidArgument):
            client.get_dataset(f"datasets/{key}")
    client.build_dataset("ok", "v1", limit=5)
    for path in ("../../etc", "/etc", "trainingRuns/../../etc", "runs/../../../tmp"):
        with pytest.raises(InvalidArgument):
            client.create_training_run("ok-v1", local_path=path)
    with pytest.raises(NotFound):
        client.get_trace("traces/00000000-0000-0000-0000-000000000000")


def test_filter_values_cannot_inject_sql(client: Client) -> None:
    client.import_jsonl(TRACES_JSONL)
    total = len(list(client.list_traces(page_size=1000)))
    for value in (
        "x' OR '1'='1",
        'x" OR 1=1 --',
        "'; DROP TABLE traces; --",
        "reasoning' --",
    ):
        quoted = value.replace("\\", "\\\\").replace('"', '\\"')
        assert list(client.list_traces(f'category = "{quoted}"')) == []
        assert list(client.list_traces(f'meta.category = "{quoted}"')) == []
    for bad in ("category = reasoning OR 1=1", 'meta.a\'b = "x"', "steps > 1; DROP TABLE traces"):
        with pytest.raises(InvalidArgument):
            list(client.list_traces(bad))
    assert len(list(client.list_traces(page_size=1000))) == total  # nothing dropped
