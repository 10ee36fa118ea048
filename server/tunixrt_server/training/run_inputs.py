"""What a training attempt starts from, for the worker and a worker group's
followers alike: the dataset's splits rendered as examples (as the tunix_sft
export renders them), and the run's best checkpoint before this attempt."""

from __future__ import annotations

import json

from ..core.rendering import completion_turn, prompt_turns
from ..core.selection import EVAL, TRAIN
from ..storage.datasets import DatasetStore
from ..storage.runs import StoredRun
from .batches import Example


def load_examples(
    store: DatasetStore, dataset_key: str, system: str
) -> tuple[list[Example], list[Example]]:
    """The train and eval splits, rendered as the tunix_sft export renders them."""
    dataset = store.get(dataset_key)
    if dataset is None:
        raise LookupError(f"dataset {dataset_key!r} no longer exists")
    splits: dict[int, list[Example]] = {
        split: [
            Example(
                prompt_turns(row.prompt, system),
                completion_turn(json.loads(row.steps_json), row.final_answer),
                row.final_answer,
                str(row.meta.get("category", "")),
            )
            for row in store.rows(dataset.seq, split, meta=True)
        ]
        for split in (TRAIN, EVAL)
    }
    return splits[TRAIN], splits[EVAL]


def best_so_far(run: StoredRun) -> tuple[int, float]:
    """(step, exact match) of the run's best checkpoint before this attempt."""
    return run.best_checkpoint_step, float(run.metrics.get("best_exact_match", 0.0))
