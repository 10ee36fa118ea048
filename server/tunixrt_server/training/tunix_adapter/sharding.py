"""A run's device mesh: the fsdp x tp axes Tunix's gemma3 parameters are annotated with.

Parameters are placed by their own partition annotations (Tunix's
ShardingConfig: embedding and MLP weights split over fsdp and tp), and the
trainer, run inside the mesh, splits each batch over fsdp. The default puts every
local device on fsdp; one device gives a trivial mesh with the same code path.
"""

from __future__ import annotations

import jax
from flax import nnx

from ...core.runspec import Mesh

AXES = ("fsdp", "tp")


def make_mesh(spec: Mesh, batch_size: int) -> jax.sharding.Mesh:
    devices = jax.devices()
    tp = spec.tp or 1
    fsdp = spec.fsdp or max(len(devices) // tp, 1)
    if fsdp * tp > len(devices):
        raise ValueError(
            f"mesh fsdp={fsdp} x tp={tp} needs {fsdp * tp} devices; this worker has "
            f"{len(devices)} ({devices[0].platform})"
        )
    if batch_size % fsdp:
        raise ValueError(f"batch_size {batch_size} does not split over fsdp={fsdp} devices")
    return jax.make_mesh(
        (fsdp, tp),
        AXES,
        axis_types=(jax.sharding.AxisType.Auto,) * 2,
        devices=devices[: fsdp * tp],
    )


def shard(model: nnx.Module, mesh: jax.sharding.Mesh) -> None:
    """Moves the model's variables onto the mesh, each as its annotations say."""
    state = nnx.state(model)
    nnx.update(model, jax.device_put(state, nnx.get_named_sharding(state, mesh)))
