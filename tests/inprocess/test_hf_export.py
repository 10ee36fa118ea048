"""hf_export against Tunix's safetensors loader: weights written back are the published
tensors, and a LoRA model merged on export computes what the LoRA model computes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gemma_checkpoint as gemma
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from safetensors.numpy import load_file

from tunixrt_server.training import hf_layout
from tunixrt_server.training.tokenizer import ByteTokenizer
from tunixrt_server.training.tunix_adapter import hf_export, models

# Byte tokenizer: no tokenizer training needed here; the vocabulary fits the embedding.
CONFIGS = {
    "grouped-query": {**gemma.SCALED_DOWN, "vocab_size": 264},
    "fused-qkv": {**gemma.SCALED_DOWN, "vocab_size": 264, "num_key_value_heads": 4},
}


def description(directory: Path, lora: dict[str, Any] | None = None) -> dict[str, Any]:
    config = hf_layout.inspect(directory).config
    init = {"safetensors": str(directory)}
    return {"config": config, "tokenizer": "bytes", "init": init, "lora": lora, "seed": 0}


def published(tmp_path: Path, config: dict[str, Any]) -> Path:
    source = tmp_path / "source"
    gemma.write_checkpoint(source, config)
    (source / "config.json").write_text(
        (source / "config.json").read_text()[:-1] + ', "tunixrt": {"tokenizer": "bytes"}}'
    )
    return source


def logits(model: nnx.Module) -> np.ndarray:
    tokens = jnp.array([ByteTokenizer().encode("<start_of_turn>user\nHi<end_of_turn>")])
    length = tokens.shape[1]
    mask = jnp.tril(jnp.ones((1, length, length), dtype=bool))
    out, _ = model(tokens, jnp.arange(length)[None], None, mask)
    return np.asarray(out)


@pytest.mark.parametrize("kind", CONFIGS)
def test_weights_go_back_to_the_published_tensors(tmp_path: Path, kind: str) -> None:
    source = published(tmp_path, CONFIGS[kind])
    desc = description(source)
    hf_export.write(models.build(desc), desc, tmp_path / "out", {"run": "r"})
    before, after = (
        load_file(str(source / "model.safetensors")),
        load_file(str(tmp_path / "out" / "model.safetensors")),
    )
    assert before.keys() == after.keys()
    for name, tensor in before.items():
        np.testing.assert_array_equal(tensor.astype(np.float32), after[name], err_msg=name)


@pytest.mark.parametrize("kind", CONFIGS)
def test_lora_is_merged_into_the_weights(tmp_path: Path, kind: str) -> None:
    source = published(tmp_path, CONFIGS[kind])
    desc = description(source, lora={"rank": 4, "alpha": 8.0})
    model = models.build(desc)
    key = jax.random.PRNGKey(1)
    for _, value in nnx.iter_graph(model):
        if isinstance(value, nnx.LoRAParam):  # lora_b starts at zero: make the merge count
            key, sub = jax.random.split(key)
            value[...] = value[...] + 0.05 * jax.random.normal(sub, value.shape)
    hf_export.write(model, desc, tmp_path / "out", {"run": "r"})
    merged = models.build(description(tmp_path / "out"))
    np.testing.assert_allclose(logits(merged), logits(model), atol=1e-5)
    assert not np.allclose(logits(models.build(description(source))), logits(model), atol=1e-3)
