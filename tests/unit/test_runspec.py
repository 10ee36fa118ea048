from __future__ import annotations

from collections.abc import Callable

import pytest

from tunixrt.v1 import training_pb2
from tunixrt_server.core.errors import ApiError
from tunixrt_server.core.runspec import AUTO, Hyperparameters, Lora, Mesh, RunSpec

NO_PATHS: Callable[[str], str] = lambda path: f"/data/{path}"  # noqa: E731


def test_defaults_come_from_the_preset_first() -> None:
    spec = RunSpec.from_request(training_pb2.TrainingRun(dataset="d"), NO_PATHS)
    assert spec.model.preset == "tiny-gemma3"
    assert spec.hyperparameters.learning_rate == 3e-2  # the preset's, not the global 1e-2
    assert spec.hyperparameters.max_seq_len == AUTO
    assert spec.lora == Lora()


def test_json_round_trip_and_specs_stored_by_older_servers() -> None:
    given = training_pb2.TrainingRun(
        dataset="d",
        hyperparameters=training_pb2.Hyperparameters(max_steps=7, system_instruction="hi"),
        lora=training_pb2.LoraConfig(enabled=True, rank=4),
    )
    spec = RunSpec.from_request(given, NO_PATHS)
    assert RunSpec.from_json(spec.to_json()) == spec
    old = {"model": {"preset": "tiny-gemma3", "local_path": ""}, "lora": {"enabled": False}}
    old |= {"hyperparameters": {"max_steps": 3, "max_seq_len": 256}}  # no new fields
    restored = RunSpec.from_json(old)
    assert restored.hyperparameters.max_steps == 3 and restored.hyperparameters.eval_examples == 64
    # Trained without clipping before it existed: a resume does not change that.
    assert restored.hyperparameters.max_grad_norm == -1 and spec.hyperparameters.max_grad_norm == 1
    assert spec.with_max_seq_len(640).hyperparameters.max_seq_len == 640


@pytest.mark.parametrize(
    ("hp", "field"),
    [
        ({"max_steps": -5}, "max_steps"),
        ({"learning_rate": float("inf")}, "learning_rate"),
        ({"max_seq_len": 8}, "max_seq_len"),
        ({"eval_examples": 5000}, "eval_examples"),
        ({"max_grad_norm": -2.0}, "max_grad_norm"),
        ({"system_instruction": "x" * 10_001}, "system_instruction"),
    ],
)
def test_out_of_range_values_name_their_field(hp: dict[str, object], field: str) -> None:
    with pytest.raises(ApiError) as err:
        Hyperparameters.resolve(hp, prefix="training_run.hyperparameters")
    assert [v.field for v in err.value.violations] == [f"training_run.hyperparameters.{field}"]


def test_string_overrides_are_typed_or_refused() -> None:
    assert Hyperparameters.parse_overrides({"max_steps": "1e3", "learning_rate": "0.1"}) == {
        "max_steps": 1000,
        "learning_rate": 0.1,
    }
    with pytest.raises(ApiError) as err:
        Hyperparameters.parse_overrides({"nope": "1", "batch_size": "two"})
    assert len(err.value.violations) == 2


def test_presets_and_paths() -> None:
    def refuse(path: str) -> str:
        raise ApiError(code=None, message="outside", reason="X")  # type: ignore[arg-type]

    with pytest.raises(ApiError, match="unknown preset"):
        RunSpec.from_request(
            training_pb2.TrainingRun(model=training_pb2.ModelSpec(preset="gpt-9")), NO_PATHS
        )
    with pytest.raises(ApiError, match="no random initialisation"):
        RunSpec.from_request(
            training_pb2.TrainingRun(model=training_pb2.ModelSpec(preset="gemma3-1b")), NO_PATHS
        )
    with pytest.raises(ApiError, match="outside"):
        RunSpec.from_request(
            training_pb2.TrainingRun(model=training_pb2.ModelSpec(local_path="../x")), refuse
        )


def test_mesh() -> None:
    def spec(**mesh: int) -> RunSpec:
        return RunSpec.from_request(
            training_pb2.TrainingRun(mesh=training_pb2.MeshConfig(**mesh)), NO_PATHS
        )

    assert spec().mesh == Mesh(fsdp=0, tp=1)  # every local device on fsdp
    assert spec(fsdp=2, tp=2).mesh == Mesh(fsdp=2, tp=2)
    assert RunSpec.from_json(spec(fsdp=4).to_json()).mesh == Mesh(fsdp=4, tp=1)
    with pytest.raises(ApiError) as err:
        spec(fsdp=-1)
    assert err.value.violations[0].field == "training_run.mesh.fsdp"


def test_a_learning_rate_above_one_needs_the_servers_override() -> None:
    with pytest.raises(ApiError) as err:
        Hyperparameters.resolve({"learning_rate": 2.0})
    assert "[1e-08, 1.0]" in err.value.violations[0].description
    assert (
        Hyperparameters.resolve({"learning_rate": 2.0}, max_learning_rate=3.0).learning_rate == 2.0
    )
