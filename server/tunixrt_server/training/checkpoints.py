"""Which checkpoint of a run to load: the newest, the best by exact match, or a step.

A run directory holds Orbax step directories under `checkpoints/` (rotated:
the newest two) and `best/` (one: the best exact match during training, kept
whatever the rotation does). Plain paths, no JAX: the server resolves a
request's choice before any worker loads anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# How the run's model was made (tunix_adapter.models.describe): a run directory has one.
MODEL_FILE = "model.json"
ROTATED = "checkpoints"
BEST = "best"
LATEST = "latest"


def run_dir(data_dir: Path, run_id: str) -> Path:
    """Where a run's files live, on every host of a deployment."""
    return data_dir / "runs" / run_id


class NoSuchCheckpoint(LookupError):
    pass


@dataclass(frozen=True)
class CheckpointRef:
    directory: str  # ROTATED or BEST, relative to the run directory
    step: int

    def path(self, run_dir: Path) -> Path:
        return run_dir / self.directory / str(self.step)


def steps(run_dir: Path, directory: str) -> list[int]:
    """Finished checkpoints (Orbax writes a tmp-suffixed directory first)."""
    root = run_dir / directory
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit() and p.is_dir())


def resolve(run_dir: Path, choice: str) -> CheckpointRef:
    """`latest` (or ""), `best`, or a step number, to a checkpoint on disk."""
    choice = choice.strip().lower() or LATEST
    rotated, best = steps(run_dir, ROTATED), steps(run_dir, BEST)
    if choice == LATEST:
        if not rotated:
            raise NoSuchCheckpoint("the run has no checkpoint yet")
        return CheckpointRef(ROTATED, rotated[-1])
    if choice == BEST:
        if not best:
            raise NoSuchCheckpoint(
                "the run has no best checkpoint: exact match was not measured during "
                "training, or never rose above 0"
            )
        return CheckpointRef(BEST, best[-1])
    if not choice.isdigit():
        raise ValueError(f'{choice!r} is not "latest", "best" or a step number')
    step = int(choice)
    if step in rotated:
        return CheckpointRef(ROTATED, step)
    if step in best:
        return CheckpointRef(BEST, step)
    kept = sorted(set(rotated) | set(best))
    raise NoSuchCheckpoint(
        f"no checkpoint at step {step}; kept: {', '.join(map(str, kept)) or 'none'}"
    )
