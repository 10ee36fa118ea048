"""Model presets, as plain data so the server can validate a run without importing JAX.

A preset either spells out a small gemma3 ModelConfig that trains from random
initialisation with a tokenizer of its own (a subword one trained on the run's
train split, or bytes), or names a published Gemma 3 model
whose weights, config.json and SentencePiece tokenizer must come from
`model.local_path` (training/hf_layout.py); the directory's config.json then
decides the shapes, and the named config only counts parameters for GetServerInfo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The byte tokenizer's 261 ids (training/tokenizer.py) rounded up to a multiple of 8
# for friendlier matmul shapes; a subword run sizes its own (tests/unit check both).
BYTE_EMBED = 264


@dataclass(frozen=True)
class Preset:
    description: str
    # gemma3 ModelConfig fields (random init) ...
    config: dict[str, Any] = field(default_factory=dict)
    # ... or the name of a ModelConfig classmethod (weights from local_path).
    named_config: str = ""
    # Hyperparameter defaults that suit this model better than the global ones.
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    # The longest max_seq_len chosen from data (the default); a request may ask for more.
    max_context: int = 2048

    @property
    def needs_weights(self) -> bool:
        return bool(self.named_config)


PRESETS: dict[str, Preset] = {
    "tiny-gemma3": Preset(
        "~1M parameters, 4 layers, a tokenizer trained on the run's data; trains on a CPU",
        config=dict(
            num_layers=4,
            num_embed=BYTE_EMBED,
            embed_dim=128,
            hidden_dim=512,
            num_heads=4,
            head_dim=32,
            num_kv_heads=1,
            sliding_window_size=128,
        ),
        # Measured: 3e-2 memorises a batch in 100 steps, 1e-2 takes several times longer.
        hyperparameters={"learning_rate": 3e-2},
        max_context=1024,
    ),
    "small-gemma3": Preset(
        "~8M parameters, 8 layers, a tokenizer trained on the run's data; for a GPU",
        config=dict(
            num_layers=8,
            num_embed=BYTE_EMBED,
            embed_dim=256,
            hidden_dim=1024,
            num_heads=4,
            head_dim=64,
            num_kv_heads=1,
            sliding_window_size=256,
        ),
        hyperparameters={"learning_rate": 1e-2},
    ),
    "gemma3-270m": Preset(
        "Gemma 3 270M; needs local_path: the published safetensors, config.json, tokenizer.model",
        named_config="gemma3_270m",
        hyperparameters={"learning_rate": 5e-5},
        max_context=8192,
    ),
    "gemma3-1b": Preset(
        "Gemma 3 1B (pt); needs local_path: published safetensors, config.json, tokenizer.model",
        named_config="gemma3_1b_pt",
        hyperparameters={"learning_rate": 2e-5},
        max_context=8192,
    ),
}
