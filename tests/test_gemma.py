"""The Gemma path without downloads: a checkpoint in the published Hugging Face layout
(tests/gemma_checkpoint.py) and a locally trained SentencePiece tokenizer, trained
through the service with LoRA and with full fine-tuning, then Generate and EvaluateRun."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gemma_checkpoint as gemma
import pytest

from conftest import TRACES_JSONL, ServerProcess, start_server
from tunixrt import AlreadyExists, Client, InvalidArgument
from tunixrt.v1 import training_pb2
from tunixrt_server.core import rendering

# One pytest-xdist process runs this file: its checkpoints are made once.
pytestmark = pytest.mark.xdist_group("gemma")

SUCCEEDED = training_pb2.TRAINING_RUN_STATE_SUCCEEDED
FEW_STEPS = {
    "max_steps": 4,
    "batch_size": 2,
    "max_seq_len": 128,
    "eval_every_steps": -1,  # Generate and EvaluateRun decode below
    "checkpoint_every_steps": 4,
    "warmup_steps": 1,
}


def rendered_corpus() -> Iterator[str]:
    for line in TRACES_JSONL.read_text().splitlines():
        trace = json.loads(line)
        yield rendering.tunix_sft_text(
            trace["prompt"], trace.get("steps", []), trace["final_answer"]
        )


def make_model_dir(directory: Path, config: dict[str, Any], vocab: int) -> None:
    gemma.write_checkpoint(directory, config)
    gemma.train_tokenizer(directory, rendered_corpus(), vocab)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("gemma") / "data"
    make_model_dir(data_dir / "models" / "gemma-small", gemma.SCALED_DOWN, vocab=1024)
    server = start_server(data_dir, env={"TUNIXRT_MAX_CONCURRENT_RUNS": "2"})
    with server.client() as client:
        client.import_jsonl(TRACES_JSONL)
        client.build_dataset("dev", "v1", limit=64, eval_fraction=0.1, seed=1)
    yield server
    server.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    with server.client() as c:
        yield c


def test_turn_markers_and_special_ids_are_gemmas(server: ServerProcess) -> None:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor()
    sp.Load(str(server.data_dir / "models" / "gemma-small" / "tokenizer.model"))
    assert (sp.pad_id(), sp.eos_id(), sp.bos_id()) == (gemma.PAD, gemma.EOS, gemma.BOS)
    ids = sp.encode(rendering.prompt_turns("What is 2 + 3?"))
    assert ids[0] == gemma.START_OF_TURN and ids.count(gemma.START_OF_TURN) == 2
    assert ids.count(gemma.END_OF_TURN) == 1
    assert sp.encode("<end_of_turn>") == [gemma.END_OF_TURN]


@pytest.fixture(scope="module")
def finished(server: ServerProcess) -> dict[str, str]:
    """A LoRA (rank 8) and a full fine-tune of the checkpoint, trained side by side."""
    with server.client() as client:
        runs = {
            kind: client.create_training_run(
                "datasets/dev-v1",
                preset="gemma3-270m",
                local_path="models/gemma-small",
                hyperparameters=FEW_STEPS,
                lora_rank=rank,
            ).name
            for kind, rank in (("lora", 8), ("full", 0))
        }
        for name in runs.values():
            list(client.watch_training_run(name))
    return runs


@pytest.mark.parametrize("kind", ["lora", "full"])
def test_trains_generates_and_evaluates(
    client: Client, finished: dict[str, str], kind: str
) -> None:
    name = finished[kind]
    done = client.get_training_run(name)
    assert done.state == SUCCEEDED, done.state_message
    assert done.metrics.step == 4 and done.lora.enabled == (kind == "lora")
    assert done.lora.rank == (8 if kind == "lora" else 0) or not done.lora.enabled
    assert done.hyperparameters.learning_rate == 5e-5  # the preset's default
    answer = client.generate(name, ["What is 2 + 3?"], max_new_tokens=8)
    assert answer.step == 4 and len(answer.generations) == 1
    evaluation = client.evaluate_run(name, max_examples=2, max_new_tokens=8)
    assert evaluation.example_count == 2


PROMPTS = ["What is 2 + 3?", "Reverse the string: 'tunix'"]


def test_export_writes_the_published_layout(
    client: Client, server: ServerProcess, finished: dict[str, str]
) -> None:
    for kind, name in finished.items():
        response = client.export_model(name, f"exports/{kind}")
        assert response.step == 4 and response.output_dir == f"exports/{kind}"
        assert [f.name for f in response.files] == [
            "config.json",
            "model.safetensors",
            "tokenizer.model",
        ]
        config = json.loads((server.data_dir / "exports" / kind / "config.json").read_text())
        assert config["tunixrt"] == {"run": name, "checkpoint": "checkpoints", "step": 4}
        assert (config["bos_token_id"], config["eos_token_id"]) == (gemma.BOS, gemma.EOS)


@pytest.mark.slow  # ~20 s; tests/unit/test_hf_export.py checks the merge by default
def test_exported_model_generates_like_the_run(client: Client, finished: dict[str, str]) -> None:
    """A run started from the LoRA run's export (LoRA merged in) decodes as the original
    did. Its first step has learning rate 0 (warm-up), so its checkpoint at step 1
    holds the exported weights unchanged."""
    client.export_model(finished["lora"], "exports/round-trip")
    original = client.generate(finished["lora"], PROMPTS, max_new_tokens=16)
    again = client.create_training_run(
        "datasets/dev-v1",
        preset="gemma3-270m",
        local_path="exports/round-trip",
        hyperparameters={
            **FEW_STEPS,
            "max_steps": 2,
            "warmup_steps": 1,
            "checkpoint_every_steps": 1,
        },
    ).name
    list(client.watch_training_run(again))
    decoded = client.generate(again, PROMPTS, max_new_tokens=16, checkpoint="1")
    assert [g.text for g in decoded.generations] == [g.text for g in original.generations]


def test_export_errors(client: Client, finished: dict[str, str]) -> None:
    name = finished["full"]
    with pytest.raises(InvalidArgument) as err:
        client.export_model(name, "../outside")
    assert err.value.field_violations[0].field == "output_dir"
    with pytest.raises(AlreadyExists):
        client.export_model(name, "models/gemma-small")
    with pytest.raises(InvalidArgument):
        client.export_model(name, "exports/x", checkpoint="newest")


def test_refuses_a_directory_it_cannot_load(client: Client, server: ServerProcess) -> None:
    broken = server.data_dir / "models" / "broken"
    broken.mkdir(parents=True)
    (broken / "model.safetensors").write_bytes(b"")

    def refused() -> str:
        with pytest.raises(InvalidArgument) as err:
            client.create_training_run("dev-v1", preset="gemma3-270m", local_path="models/broken")
        (violation,) = err.value.field_violations
        assert violation.field == "training_run.model.local_path"
        return violation.description

    assert "config.json" in refused()
    (broken / "config.json").write_text(json.dumps({**gemma.SCALED_DOWN, "model_type": "llama"}))
    assert "gemma3_text" in refused()
    (broken / "config.json").write_text(json.dumps({**gemma.SCALED_DOWN, "tunixrt": "bytes"}))
    assert "tokenizer.model" in refused()


@pytest.mark.slow
def test_true_270m_shapes(client: Client, server: ServerProcess) -> None:
    """google/gemma-3-270m's tensor names and shapes (262,144-token embedding, 18 layers):
    a few LoRA steps, then Generate."""
    make_model_dir(server.data_dir / "models" / "gemma-270m", gemma.GEMMA3_270M, vocab=2000)
    run = client.create_training_run(
        "datasets/dev-v1",
        preset="gemma3-270m",
        local_path="models/gemma-270m",
        hyperparameters={**FEW_STEPS, "max_steps": 2, "batch_size": 1},
        lora_rank=8,
    )
    list(client.watch_training_run(run.name, timeout=1800))
    done = client.get_training_run(run.name)
    assert done.state == SUCCEEDED, done.state_message
    assert done.metrics.step == 2
    assert client.generate(run.name, ["What is 2 + 3?"], max_new_tokens=4).step == 2
    files = {f.name: f.size_bytes for f in client.export_model(run.name, "exports/270m").files}
    assert files["model.safetensors"] > 268_000_000 * 4  # float32, LoRA merged in
