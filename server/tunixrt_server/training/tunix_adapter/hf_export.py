"""A run's model as a directory in the published Hugging Face layout (training/hf_layout.py).

Weights go back to Gemma3ForCausalLM's tensor names and shapes: the inverse of
Tunix's safetensors loader, so the directory loads as another run's
`local_path` (and in other Gemma tooling). LoRA adapters are merged by Tunix's
own saver, over base weights written the same way first. Everything is written
as float32, the precision the run trained in.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from flax import nnx
from safetensors.numpy import save_file
from tunix.models import safetensors_saver
from tunix.models.gemma3 import model as gemma3
from tunix.models.gemma3 import params as gemma3_params

from .. import hf_layout
from . import models

WEIGHTS = "model.safetensors"
_NORMS = {
    "pre_attention_norm": "input_layernorm",
    "post_attention_norm": "post_attention_layernorm",
    "pre_ffw_norm": "pre_feedforward_layernorm",
    "post_ffw_norm": "post_feedforward_layernorm",
    "attn._query_norm": "self_attn.q_norm",
    "attn._key_norm": "self_attn.k_norm",
}


def _base_params(model: nnx.Module) -> dict[str, np.ndarray]:
    """Every weight but LoRA adapters, by its dotted path ("layers.0.attn.q_einsum.w")."""
    return {
        ".".join(map(str, path)): np.asarray(value[...], dtype=np.float32)
        for path, value in nnx.iter_graph(model)
        if isinstance(value, nnx.Param) and not isinstance(value, nnx.LoRAParam)
    }


def _projection(w: np.ndarray) -> np.ndarray:
    """(heads, embed, head_dim) -> (heads * head_dim, embed), as q/k/v_proj store it."""
    heads, embed, head_dim = w.shape
    return w.transpose(0, 2, 1).reshape(heads * head_dim, embed)


def hf_tensors(params: dict[str, np.ndarray], cfg: gemma3.ModelConfig) -> dict[str, np.ndarray]:
    out = {
        "model.embed_tokens.weight": params["embedder.input_embedding"],
        "model.norm.weight": params["final_norm.scale"],
    }
    for i in range(cfg.num_layers):
        ours, theirs = f"layers.{i}.", f"model.layers.{i}."
        if f"{ours}attn.qkv_einsum.w" in params:  # num_heads == num_kv_heads: fused
            q, k, v = params[f"{ours}attn.qkv_einsum.w"]
        else:
            q = params[f"{ours}attn.q_einsum.w"]
            k, v = params[f"{ours}attn.kv_einsum.w"]
        attn_out = params[f"{ours}attn.attn_vec_einsum.w"]  # (heads, head_dim, embed)
        out |= {
            f"{theirs}self_attn.q_proj.weight": _projection(q),
            f"{theirs}self_attn.k_proj.weight": _projection(k),
            f"{theirs}self_attn.v_proj.weight": _projection(v),
            f"{theirs}self_attn.o_proj.weight": attn_out.reshape(-1, cfg.embed_dim).T,
        }
        for name in ("gate_proj", "up_proj", "down_proj"):
            out[f"{theirs}mlp.{name}.weight"] = params[f"{ours}mlp.{name}.kernel"].T
        for norm, hf_norm in _NORMS.items():
            out[f"{theirs}{hf_norm}.weight"] = params[f"{ours}{norm}.scale"]
    return {name: np.ascontiguousarray(value) for name, value in out.items()}


def _lora_layers(layers: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Tunix's gemma3 extractor splits kv_einsum adapters into k and v; a fused
    qkv_einsum (num_heads == num_kv_heads) is split into q, k and v first."""
    split: dict[str, list[Any]] = {}
    for path, (lora_a, lora_b) in layers.items():
        if "qkv_einsum" not in path:
            split[path] = [lora_a, lora_b]
            continue
        b = np.asarray(lora_b[...])  # (rank, 3, heads, head_dim)
        for i, name in enumerate(("q_einsum", "k_einsum", "v_einsum")):
            split[path.replace("qkv_einsum", name)] = [lora_a, b[:, i]]
    extracted: dict[str, list[Any]] = gemma3_params._extract_gemma3_lora_layers(split)
    return extracted


def _config_json(
    cfg: gemma3.ModelConfig, desc: dict[str, Any], tokenizer: Any, provenance: dict[str, Any]
) -> str:
    fields = {name: getattr(cfg, name) for name in hf_layout.MODEL_FIELDS}
    ids = {
        "bos_token_id": int(tokenizer.bos_id()),
        "eos_token_id": int(tokenizer.eos_id()),
        "pad_token_id": int(tokenizer.pad_id()),
    }
    config = hf_layout.hf_config(fields, ids)
    # No tokenizer.model says the byte tokenizer; where it came from says the rest.
    marker = {"tokenizer": hf_layout.BYTES} if desc["tokenizer"] == hf_layout.BYTES else {}
    config["tunixrt"] = {**marker, **provenance}
    return json.dumps(config, indent=2)


def write(model: nnx.Module, desc: dict[str, Any], out: Path, provenance: dict[str, Any]) -> None:
    """Writes the model directory `out` (which must not exist yet)."""
    cfg = models.config(desc)
    tokenizer = models.load_tokenizer(desc)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as staging:
        base = Path(staging) / "base"
        base.mkdir()
        save_file(hf_tensors(_base_params(model), cfg), str(base / WEIGHTS))
        (base / hf_layout.CONFIG).write_text(_config_json(cfg, desc, tokenizer, provenance))
        if desc["tokenizer"] != hf_layout.BYTES:
            shutil.copyfile(desc["tokenizer"], base / hf_layout.SENTENCEPIECE)
        lora = desc.get("lora")
        if lora:
            merged = Path(staging) / "merged"
            safetensors_saver.save_lora_merged_model_as_safetensors(
                str(base),
                str(merged),
                model,
                rank=lora["rank"],
                alpha=lora["alpha"],
                state_key_transform_fn=gemma3_params._gemma3_state_key_to_safetensors_key,
                custom_layer_extractor_fn=_lora_layers,
                transpose_rules=gemma3_params._GEMMA3_HUGGINGFACE_TRANSPOSE_RULES,
            )
            base = merged
        base.rename(out)  # all at once: no half-written model directory
