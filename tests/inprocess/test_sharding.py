"""Meshes a worker can and cannot build (its JAX sees one CPU device here)."""

from __future__ import annotations

import pytest

from tunixrt_server.core.runspec import Mesh
from tunixrt_server.training.tunix_adapter import sharding


def test_default_mesh_puts_every_local_device_on_fsdp() -> None:
    mesh = sharding.make_mesh(Mesh(), batch_size=8)
    assert mesh.axis_names == sharding.AXES and mesh.devices.size == 1


@pytest.mark.parametrize(
    ("mesh", "batch", "says"),
    [(Mesh(fsdp=8), 8, "needs 8 devices"), (Mesh(fsdp=1, tp=2), 8, "needs 2 devices")],
)
def test_a_mesh_the_worker_cannot_build_says_why(mesh: Mesh, batch: int, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        sharding.make_mesh(mesh, batch)
