"""What a worker on this machine would train with: library versions, the JAX backend
and devices, and each preset's parameter count (from abstract shapes: nothing is
allocated, so even the 1B preset costs nothing to count)."""

from __future__ import annotations

import importlib.metadata
import math
from typing import Any

import jax
from flax import nnx
from tunix.models.gemma3 import model as gemma3

from ...core.presets import PRESETS
from . import models

DISTRIBUTIONS = {
    "tunix": "google-tunix",
    "jax": "jax",
    "jaxlib": "jaxlib",
    "flax": "flax",
    "optax": "optax",
    "orbax": "orbax-checkpoint",
    "qwix": "qwix",
}


def parameter_count(preset: str) -> int:
    known = PRESETS[preset]
    desc = {"named_config": known.named_config} if known.needs_weights else {"config": known.config}
    config = models.config(desc)
    abstract = nnx.eval_shape(lambda: gemma3.Gemma3(config, rngs=nnx.Rngs(0)))
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(nnx.state(abstract, nnx.Param)))


def describe() -> dict[str, Any]:
    versions = {}
    for name, distribution in DISTRIBUTIONS.items():
        try:
            versions[name] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = ""
    return {
        "versions": versions,
        "backend": jax.default_backend(),
        "devices": [
            {
                "id": d.id,
                "platform": d.platform,
                "kind": d.device_kind,
                "process_index": d.process_index,
            }
            for d in jax.devices()
        ],
        "parameter_counts": {name: parameter_count(name) for name in PRESETS},
    }
