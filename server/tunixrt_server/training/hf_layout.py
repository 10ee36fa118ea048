"""The published Hugging Face layout of a Gemma 3 text model, as plain files.

    *.safetensors      the weights (Gemma3ForCausalLM tensor names)
    config.json        the shapes (model_type "gemma3_text")
    tokenizer.model    the SentencePiece model

A run's `model.local_path` may be such a directory: its config.json decides the
model's shapes (the preset gives only defaults), so any Gemma 3 text size
loads, and so does a model exported by this service. An export of a run
trained with the byte tokenizer has no tokenizer.model; its config.json says
`"tunixrt": {"tokenizer": "bytes"}` instead.

Plain Python, no JAX: the server checks a directory with `inspect` before it
queues a run, and the training worker turns the config into Tunix's
ModelConfig fields with the same function.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG = "config.json"
SENTENCEPIECE = "tokenizer.model"
BYTES = "bytes"
# The Tunix gemma3 ModelConfig fields a config.json decides.
MODEL_FIELDS = (
    "num_layers",
    "num_embed",
    "embed_dim",
    "hidden_dim",
    "num_heads",
    "head_dim",
    "num_kv_heads",
    "sliding_window_size",
    "local_base_frequency",
    "global_base_frequency",
)
# Tunix's gemma3 repeats five sliding-window layers and one global layer.
_PATTERN = 6


@dataclass(frozen=True)
class Layout:
    config: dict[str, Any]  # Tunix gemma3 ModelConfig fields
    tokenizer: str  # the SentencePiece file, or BYTES


def _layer_types(num_layers: int) -> list[str]:
    return [
        "full_attention" if (i + 1) % _PATTERN == 0 else "sliding_attention"
        for i in range(num_layers)
    ]


def model_config(hf: dict[str, Any]) -> dict[str, Any]:
    """Tunix gemma3 ModelConfig fields for a config.json; ValueError says what Tunix's
    gemma3 cannot build."""
    if hf.get("model_type") != "gemma3_text":
        raise ValueError(
            f'{CONFIG} has model_type {hf.get("model_type")!r}; only "gemma3_text" '
            "(Gemma 3 text models: 270M, 1B) loads"
        )

    def number(key: str, default: float | None = None) -> int:
        value = hf.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{CONFIG} needs a number for {key!r}, got {value!r}")
        return int(value)

    config = {
        "num_layers": number("num_hidden_layers"),
        "num_embed": number("vocab_size"),
        "embed_dim": number("hidden_size"),
        "hidden_dim": number("intermediate_size"),
        "num_heads": number("num_attention_heads"),
        "head_dim": number("head_dim"),
        "num_kv_heads": number("num_key_value_heads"),
        "sliding_window_size": number("sliding_window"),
        "local_base_frequency": number("rope_local_base_freq", 10_000),
        "global_base_frequency": number("rope_theta", 1_000_000),
    }
    unsupported = []
    if hf.get("layer_types") not in (None, _layer_types(config["num_layers"])):
        unsupported.append("layer_types other than 5 sliding : 1 full")
    if hf.get("query_pre_attn_scalar", config["head_dim"]) != config["head_dim"]:
        unsupported.append("query_pre_attn_scalar other than head_dim")
    if hf.get("rope_scaling") or hf.get("final_logit_softcapping"):
        unsupported.append("rope_scaling or logit softcapping")
    if unsupported:
        raise ValueError(f"{CONFIG} has {', '.join(unsupported)}: Tunix's gemma3 cannot load it")
    return config


def hf_config(config: dict[str, Any], tokenizer_ids: dict[str, int]) -> dict[str, Any]:
    """The config.json of a model with these Tunix fields (the inverse of `model_config`)."""
    return {
        "architectures": ["Gemma3ForCausalLM"],
        "model_type": "gemma3_text",
        "num_hidden_layers": config["num_layers"],
        "vocab_size": config["num_embed"],
        "hidden_size": config["embed_dim"],
        "intermediate_size": config["hidden_dim"],
        "num_attention_heads": config["num_heads"],
        "head_dim": config["head_dim"],
        "num_key_value_heads": config["num_kv_heads"],
        "sliding_window": config["sliding_window_size"],
        "layer_types": _layer_types(config["num_layers"]),
        "query_pre_attn_scalar": config["head_dim"],
        "rope_local_base_freq": float(config.get("local_base_frequency", 10_000)),
        "rope_theta": float(config.get("global_base_frequency", 10_000)),
        "rope_scaling": None,
        "final_logit_softcapping": None,
        "attn_logit_softcapping": None,
        "hidden_activation": "gelu_pytorch_tanh",
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        **tokenizer_ids,
    }


def inspect(directory: Path) -> Layout:
    """What a model directory holds; ValueError names what is missing or unusable."""
    if not any(directory.glob("*.safetensors")):
        raise ValueError(f"{directory.name}/ has no *.safetensors weights")
    try:
        hf = json.loads((directory / CONFIG).read_text())
    except FileNotFoundError:
        raise ValueError(f"{directory.name}/ has no {CONFIG}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{directory.name}/{CONFIG} is not JSON: {exc}") from None
    except OSError as exc:  # a directory of that name, no permission
        raise ValueError(f"{directory.name}/{CONFIG} cannot be read: {exc.strerror}") from None
    if not isinstance(hf, dict):
        raise ValueError(f"{directory.name}/{CONFIG} is not a JSON object")
    config = model_config(hf)
    if (directory / SENTENCEPIECE).is_file():
        return Layout(config, str(directory / SENTENCEPIECE))
    ours = hf.get("tunixrt")
    if isinstance(ours, dict) and ours.get("tokenizer") == BYTES:
        return Layout(config, BYTES)
    raise ValueError(f"{directory.name}/ has no {SENTENCEPIECE}")
