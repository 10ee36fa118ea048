"""Gemma 3 models for a run: configs, tokenizers, initialisation, checkpoints.

A run records in `model.json` how its model was made (preset, config or named
config, tokenizer, where the weights came from, LoRA), so Generate, a resume or
a later run rebuilds exactly that model.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import qwix
from flax import nnx
from tunix.models.gemma3 import model as gemma3
from tunix.models.gemma3 import params_safetensors
from tunix.sft.checkpoint_manager import CheckpointManager

from ...core.grpo_spec import GRPO
from ...core.presets import PRESETS
from ...core.runspec import BYTES, SUBWORD, RunSpec
from .. import hf_layout, subword
from ..checkpoints import BEST, MODEL_FILE, ROTATED, CheckpointRef, steps
from ..tokenizer import ByteTokenizer, SentencePieceTokenizer, load

LORA_MODULES = ".*attn.*|.*mlp.*"
# From-scratch MLP kernels: normal(0, 0.02), as GPT-2 and most from-scratch recipes.
MLP_INIT_STDDEV = 0.02
_MLP_SEED = 0x4D4C50  # keeps the MLP draws apart from the rest of the seed's


def describe(spec: RunSpec) -> dict[str, Any]:
    """What a run's model.json records: enough to rebuild the model for Generate."""
    preset, local_path = spec.model.preset, spec.model.local_path
    lora = {"rank": spec.lora.rank, "alpha": spec.lora.alpha} if spec.lora.enabled else None
    # The seed of a random initialisation: a LoRA run's base weights are rebuilt from it.
    seed = spec.hyperparameters.seed
    if local_path and (Path(local_path) / MODEL_FILE).exists():
        source = json.loads((Path(local_path) / MODEL_FILE).read_text())
        if source.get("lora"):
            raise ValueError(f"{local_path} holds LoRA adapters; start from a full fine-tune")
        init = {"run_dir": local_path}
        # GRPO refines what SFT learnt best: the run's best checkpoint when it kept one.
        if spec.method == GRPO and steps(Path(local_path), BEST):
            init["checkpoint"] = BEST
        return {**source, "init": init, "lora": lora, "seed": seed}
    desc: dict[str, Any] = {"preset": preset, "lora": lora, "seed": seed}
    if local_path:  # a model directory in the published layout: its config.json decides
        layout = hf_layout.inspect(Path(local_path))
        return desc | {
            "config": layout.config,
            "tokenizer": layout.tokenizer,
            "init": {"safetensors": local_path},
        }
    # A SUBWORD tokenizer is trained when the run starts (describe_once).
    tokenizer = hf_layout.BYTES if spec.model.tokenizer == BYTES else SUBWORD
    return desc | {
        "config": PRESETS[preset].config,
        "tokenizer": tokenizer,
        "init": {},
        "mlp_init_stddev": MLP_INIT_STDDEV,
    }


def read_description(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / MODEL_FILE).read_text())  # type: ignore[no-any-return]


def describe_once(
    spec: RunSpec, run_dir: Path, train_texts: Callable[[], Iterable[str]]
) -> dict[str, Any]:
    """The run's model.json, written by its first attempt; a resume reads it back.
    A SUBWORD tokenizer is trained on `train_texts` here, saved beside it, and the
    model's embedding sized to it."""
    path = run_dir / MODEL_FILE
    if path.exists():
        return read_description(run_dir)
    desc = describe(spec)
    run_dir.mkdir(parents=True, exist_ok=True)
    if desc["tokenizer"] == SUBWORD:
        tokenizer = run_dir / hf_layout.SENTENCEPIECE
        pieces = subword.train(train_texts(), spec.model.vocab_size, tokenizer)
        # Rounded up to a multiple of 8 for friendlier matmul shapes.
        embed = (pieces + 7) // 8 * 8
        desc |= {"tokenizer": str(tokenizer), "config": {**desc["config"], "num_embed": embed}}
    # Every process of a worker group writes it: whole or not at all, for the others.
    partial = path.with_name(f"{MODEL_FILE}.{os.getpid()}")
    partial.write_text(json.dumps(desc, indent=2))
    partial.replace(path)
    return desc


def config(desc: dict[str, Any]) -> gemma3.ModelConfig:
    # float32: bf16 params with AdamW give NaN losses on CPU.
    if desc.get("named_config"):  # a preset's published config (parameter counts)
        base = getattr(gemma3.ModelConfig, desc["named_config"])()
        return dataclasses.replace(base, param_dtype=jnp.float32)
    return gemma3.ModelConfig(**desc["config"], param_dtype=jnp.float32)


def load_tokenizer(desc: dict[str, Any]) -> ByteTokenizer | SentencePieceTokenizer:
    return load(desc["tokenizer"])


def build(desc: dict[str, Any], *, initialise: bool = True) -> nnx.Module:
    """The model of a description, with LoRA adapters if it has them. Without
    `initialise` the weights are random (a whole checkpoint is restored over them)."""
    cfg = config(desc)
    seed = int(desc.get("seed", 0))
    init = desc.get("init", {}) if initialise else {}
    if "safetensors" in init:
        model = params_safetensors.create_model_from_safe_tensors(
            init["safetensors"], cfg, dtype=jnp.float32
        )
    else:
        model = gemma3.Gemma3(cfg, rngs=nnx.Rngs(seed))
        # model.json files from before the fix trained (and rebuild) with zero MLPs.
        if desc.get("mlp_init_stddev"):
            initialise_mlps(model, seed, float(desc["mlp_init_stddev"]))
        if "run_dir" in init:
            source = CheckpointRef(init.get("checkpoint", ROTATED), 0)
            if restore(model, Path(init["run_dir"]), source, lora=False) == 0:
                raise ValueError(f"{init['run_dir']} has no checkpoint to start from")
    lora = desc.get("lora")
    if lora:
        provider = qwix.LoraProvider(
            module_path=LORA_MODULES, rank=lora["rank"], alpha=lora["alpha"]
        )
        model = qwix.apply_lora_to_model(
            model, provider, rngs=nnx.Rngs(seed + 1), **model.get_model_input()
        )
    return model  # type: ignore[no-any-return]


def initialise_mlps(model: nnx.Module, seed: int, stddev: float) -> None:
    """Random MLP kernels for a model trained from scratch. Tunix's gemma3
    FeedForward starts its gate, up and down kernels at zero (they are meant to
    be loaded), and three zero kernels get exactly zero gradient: left alone, a
    from-scratch model trains as attention only."""
    key = jax.random.key((seed ^ _MLP_SEED) % 2**32)
    for _, module in nnx.iter_modules(model):
        if isinstance(module, gemma3.FeedForward):
            for layer in (module.gate_proj, module.up_proj, module.down_proj):
                key, sub = jax.random.split(key)
                kernel = layer.kernel
                kernel[...] = stddev * jax.random.normal(sub, kernel.shape, kernel.dtype)


def restore(model: nnx.Module, run_dir: Path, ref: CheckpointRef, *, lora: bool) -> int:
    """Loads a checkpoint's parameters into `model` (step 0: the newest in the
    directory); returns the step, 0 when there is none. LoRA runs save adapters only."""
    manager = CheckpointManager(str(run_dir / ref.directory))
    try:
        step, _ = manager.maybe_restore(model, step=ref.step or None, restore_only_lora_params=lora)
    finally:
        manager.close()
    return int(step)
