"""A from-scratch model learns with all of its parameters, and its trained subword
tokenizer is what the run's model is sized for (JAX in process: not tests/unit)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tunixrt_server.core.rendering import completion_turn, prompt_turns
from tunixrt_server.core.runspec import BYTES, Model, RunSpec
from tunixrt_server.training import hf_layout
from tunixrt_server.training.tunix_adapter import models

TEXTS = [
    prompt_turns(f"What is {a} + {b}?")
    + completion_turn([{"content": f"Add {a} and {b}."}], str(a + b))
    for a in range(30)
    for b in range(0, 30, 7)
]


def gradient_norms(model: nnx.Module, vocab: int) -> dict[str, float]:
    tokens = jnp.asarray(np.random.default_rng(0).integers(5, vocab, (2, 24)), jnp.int32)
    positions = jnp.broadcast_to(jnp.arange(24), (2, 24))
    mask = jnp.tril(jnp.ones((24, 24), jnp.bool_))[None].repeat(2, 0)

    def loss(m: nnx.Module) -> jax.Array:
        logits, _ = m(tokens[:, :-1], positions[:, :-1], None, mask[:, :-1, :-1])
        logp = jax.nn.log_softmax(logits)
        return -jnp.take_along_axis(logp, tokens[:, 1:, None], -1).mean()

    grads = nnx.grad(loss)(model)
    flat = nnx.to_flat_state(grads)
    return {"/".join(map(str, path)): float(jnp.abs(g[...]).max()) for path, g in flat}


def test_every_parameter_of_a_from_scratch_model_gets_a_gradient(tmp_path: Path) -> None:
    spec = RunSpec(Model(tokenizer=BYTES))
    desc = models.describe_once(spec, tmp_path, lambda: iter(()))
    norms = gradient_norms(models.build(desc), 200)
    dead = sorted(name for name, norm in norms.items() if norm == 0.0)
    assert not dead, dead
    assert any("mlp" in name and "down_proj" in name for name in norms)


def test_a_model_json_from_before_the_fix_rebuilds_as_it_trained(tmp_path: Path) -> None:
    """Runs that trained with zero MLPs (their model.json has no mlp_init_stddev) keep
    them when rebuilt, e.g. a LoRA run's base weights from its seed."""
    desc = models.describe(RunSpec(Model(tokenizer=BYTES)))
    del desc["mlp_init_stddev"]
    model = models.build(desc)
    kernels = [
        m.down_proj.kernel[...] for _, m in nnx.iter_modules(model) if hasattr(m, "down_proj")
    ]
    assert kernels and all(float(jnp.abs(k).max()) == 0.0 for k in kernels)


def test_a_subword_run_trains_its_tokenizer_and_sizes_its_embedding(tmp_path: Path) -> None:
    spec = RunSpec(Model(vocab_size=400))
    desc = models.describe_once(spec, tmp_path, lambda: iter(TEXTS))
    assert desc["tokenizer"] == str(tmp_path / hf_layout.SENTENCEPIECE)
    tokenizer = models.load_tokenizer(desc)
    assert desc["config"]["num_embed"] == (tokenizer.vocab_size + 7) // 8 * 8
    assert tokenizer.vocab_size <= 400
    for text in TEXTS[:20]:
        ids = tokenizer.encode(text)
        assert tokenizer.decode(ids) == text
        assert len(ids) < len(text.encode()) / 2  # subword, not bytes
    # A resume reads it back: the same description, the same file.
    assert models.describe_once(spec, tmp_path, lambda: iter(["other text"])) == desc
    assert models.build(desc) is not None
