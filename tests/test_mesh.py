"""Multi-device training on CPU: XLA emulates 4 host devices, and a run sharded over
them (fsdp=4) follows the loss curve of the same run on one device."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import TRACES_JSONL, ServerProcess, start_server
from tunixrt import Client
from tunixrt.v1 import training_pb2

SUCCEEDED = training_pb2.TRAINING_RUN_STATE_SUCCEEDED
STEPS = {
    "max_steps": 20,
    "batch_size": 8,
    "max_seq_len": 128,
    "eval_every_steps": -1,
    "checkpoint_every_steps": 20,
}
# Exact match decodes under the mesh too (it does not change the training losses).
WITH_EXACT_MATCH = {"eval_every_steps": 20, "eval_examples": 2}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(
        tmp_path_factory.mktemp("mesh"),
        env={
            "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
            "TUNIXRT_MAX_CONCURRENT_RUNS": "2",
        },
    )
    with server.client() as client:
        client.import_jsonl(TRACES_JSONL)
        client.build_dataset("dev", "v1", eval_fraction=0.1, seed=1)
    yield server
    server.stop()


def events(client: Client, name: str, kind: str) -> list[training_pb2.TrainingEvent]:
    return [e for e in client.watch_training_run(name) if e.WhichOneof("event") == kind]


@pytest.mark.slow  # ~45 s on 2 cores; tests/unit/test_sharding.py runs by default
def test_four_devices_follow_the_one_device_curve(server: ServerProcess) -> None:
    with server.client() as client:
        runs = {
            fsdp: client.create_training_run(
                "dev-v1",
                hyperparameters={**STEPS, **(WITH_EXACT_MATCH if fsdp == 4 else {})},
                mesh={"fsdp": fsdp},
            )
            for fsdp in (1, 4)
        }
        one, four = (
            [e.step_metrics.loss for e in events(client, runs[fsdp].name, "step_metrics")]
            for fsdp in (1, 4)
        )
        for run in runs.values():
            done = client.get_training_run(run.name)
            assert done.state == SUCCEEDED, done.state_message
        assert client.get_training_run(runs[4].name).mesh.fsdp == 4
        (decoded,) = events(client, runs[4].name, "eval_metrics")[-1:]
        assert decoded.eval_metrics.example_count == 2
        assert len(one) == len(four) == 20
        assert four[0] == pytest.approx(one[0], rel=1e-5)
        for step, (a, b) in enumerate(zip(one, four, strict=True), 1):
            assert b == pytest.approx(a, rel=0.02), f"step {step}: {b} vs {a}"
        # A checkpoint saved sharded restores for Generate.
        assert client.generate(runs[4].name, ["What is 2 + 3?"], max_new_tokens=4).step == 20
