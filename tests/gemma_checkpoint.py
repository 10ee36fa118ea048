"""A Gemma 3 checkpoint in the published Hugging Face layout, made here: no download.

`write_checkpoint` writes `model.safetensors` with Gemma3ForCausalLM's tensor
names and shapes (bfloat16, random values, as google/gemma-3-270m ships them)
and its `config.json`; `train_tokenizer` trains a SentencePiece model whose
special tokens sit at Gemma 3's ids, so the turn markers are single pieces.
Written from the published names alone, not from the service's export code, so
loading it tests the real path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

# Gemma 3's tokenizer: pad 0, eos 1, bos 2, unk 3, then <mask>, [multimodal] and
# <unused0>... up to the turn markers at 105 and 106.
PAD, EOS, BOS, UNK = 0, 1, 2, 3
START_OF_TURN, END_OF_TURN = 105, 106
_FILLERS = ["<mask>", "[multimodal]", *(f"<unused{i}>" for i in range(99))]


def hf_config(
    *,
    layers: int,
    hidden: int,
    intermediate: int,
    heads: int,
    kv_heads: int,
    head_dim: int,
    vocab: int,
    sliding_window: int,
) -> dict[str, Any]:
    """google/gemma-3-270m's config.json with these sizes."""
    return {
        "architectures": ["Gemma3ForCausalLM"],
        "model_type": "gemma3_text",
        "attention_bias": False,
        "attn_logit_softcapping": None,
        "final_logit_softcapping": None,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "pad_token_id": PAD,
        "head_dim": head_dim,
        "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "layer_types": [
            "full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(layers)
        ],
        "max_position_embeddings": 32768,
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "num_key_value_heads": kv_heads,
        "query_pre_attn_scalar": head_dim,
        "rms_norm_eps": 1e-06,
        "rope_local_base_freq": 10000.0,
        "rope_scaling": None,
        "rope_theta": 1000000.0,
        "sliding_window": sliding_window,
        "torch_dtype": "bfloat16",
        "vocab_size": vocab,
    }


GEMMA3_270M = hf_config(
    layers=18,
    hidden=640,
    intermediate=2048,
    heads=4,
    kv_heads=1,
    head_dim=256,
    vocab=262144,
    sliding_window=512,
)
# The same names and structure, small enough for the default test run.
SCALED_DOWN = hf_config(
    layers=2,
    hidden=64,
    intermediate=128,
    heads=4,
    kv_heads=1,
    head_dim=16,
    vocab=1024,
    sliding_window=128,
)


def tensor_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    d, f = config["hidden_size"], config["intermediate_size"]
    q, kv = config["num_attention_heads"], config["num_key_value_heads"]
    h = config["head_dim"]
    shapes: dict[str, tuple[int, ...]] = {
        "model.embed_tokens.weight": (config["vocab_size"], d),
        "model.norm.weight": (d,),
    }
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes |= {
            p + "self_attn.q_proj.weight": (q * h, d),
            p + "self_attn.k_proj.weight": (kv * h, d),
            p + "self_attn.v_proj.weight": (kv * h, d),
            p + "self_attn.o_proj.weight": (d, q * h),
            p + "self_attn.q_norm.weight": (h,),
            p + "self_attn.k_norm.weight": (h,),
            p + "mlp.gate_proj.weight": (f, d),
            p + "mlp.up_proj.weight": (f, d),
            p + "mlp.down_proj.weight": (d, f),
            p + "input_layernorm.weight": (d,),
            p + "post_attention_layernorm.weight": (d,),
            p + "pre_feedforward_layernorm.weight": (d,),
            p + "post_feedforward_layernorm.weight": (d,),
        }
    return shapes


def write_checkpoint(directory: Path, config: dict[str, Any], seed: int = 0) -> None:
    """model.safetensors (bfloat16, small random weights; norms near their identity)
    and config.json."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in tensor_shapes(config).items():
        if name.endswith("norm.weight"):
            values = rng.normal(0.0, 0.01, shape)  # Gemma's RMSNorm scales by 1 + w
        else:
            values = rng.normal(0.0, 0.02, shape)
        tensors[name] = values.astype(ml_dtypes.bfloat16)
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    (directory / "config.json").write_text(json.dumps(config, indent=2))


def train_tokenizer(directory: Path, texts: Iterable[str], vocab_size: int) -> Path:
    """tokenizer.model: BPE with byte fallback (as Gemma's), its special ids at Gemma's."""
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_prefix=str(directory / "tokenizer"),
        model_type="bpe",
        vocab_size=vocab_size,
        byte_fallback=True,
        pad_id=PAD,
        eos_id=EOS,
        bos_id=BOS,
        unk_id=UNK,
        user_defined_symbols=[*_FILLERS, "<start_of_turn>", "<end_of_turn>"],
        character_coverage=1.0,
        split_digits=True,
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        num_threads=2,
        minloglevel=2,
    )
    (directory / "tokenizer.vocab").unlink()
    return directory / "tokenizer.model"
