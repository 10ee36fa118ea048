"""Training manifests (GetTrainingManifest): plain data from a dataset, a model and
resolved hyperparameters, in one of two shapes.

- TUNIXRT_V1 (the default): this service's own, with the ExportDataset call to
  fetch the data and every resolved hyperparameter.
- TUNIX_RT: the tunix-rt project's `version: "1.0"`, `runner: tunix`, `mode: sft`
  manifest, key for key, so scripts written for it read this one unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .errors import FieldViolation, invalid_argument
from .presets import PRESETS
from .runspec import Hyperparameters

# tunix-rt's defaults for what this service does not decide.
TUNIX_RT_DEVICE = "auto"


def check_model(model: str) -> str:
    """A manifest's model: a preset name. Anything else is INVALID_ARGUMENT that says
    what can be trained, and why a model tunix-rt names cannot be."""
    if model in PRESETS:
        return model
    known = ", ".join(PRESETS)
    why = ""
    if model.startswith(("google/gemma-", "gemma-")) and "gemma-3" not in model:
        why = (
            f" {model} is a Gemma 1 or 2 model, which Tunix's gemma3 cannot load; this "
            "service trains Gemma 3."
        )
    elif "/" in model:
        why = " Weights are never downloaded here."
    description = f"unknown model {model!r}; use a preset: {known}"
    raise invalid_argument(
        [FieldViolation("model", description)],
        message=f"model: {description}.{why} For published Gemma 3 weights, name "
        "gemma3-270m or gemma3-1b and give the run model.local_path (a directory under "
        "the server's data dir).",
    )


def tunixrt_v1(dataset: dict[str, Any], model: str, hp: Hyperparameters) -> dict[str, Any]:
    return {
        "apiVersion": "tunixrt.v1",
        "kind": "TunixSftRun",
        "dataset": {
            **dataset,
            "export": {
                "rpc": "tunixrt.v1.ExportService/ExportDataset",
                "format": "prompt_completion",
                "train_split": "DATASET_SPLIT_TRAIN",
                "eval_split": "DATASET_SPLIT_EVAL",
            },
        },
        "model": {"preset": model},
        "training": {
            "trainer": "tunix.sft.PeftTrainer",
            "loss_mask": "completion_only",
            **dataclasses.asdict(hp),
        },
    }


def tunix_rt(dataset: dict[str, Any], model: str, hp: Hyperparameters) -> dict[str, Any]:
    """tunix-rt's manifest. num_epochs is the given one, or the passes that max_steps
    makes (rounded up); max_seq_length the given one, or the preset's context, within
    which this service picks the length from the data."""
    train = max(1, int(dataset["train_count"]))
    epochs = hp.num_epochs or math.ceil(hp.max_steps * hp.batch_size / train)
    return {
        "version": "1.0",
        "runner": "tunix",
        "mode": "sft",
        "model": {"model_id": model},
        "dataset": {"format": "tunix_sft", "path": f"./datasets/{dataset['key']}.jsonl"},
        "training": {
            "learning_rate": hp.learning_rate,
            "num_epochs": epochs,
            "batch_size": hp.batch_size,
            "max_seq_length": hp.max_seq_len or PRESETS[model].max_context,
            "device": TUNIX_RT_DEVICE,
        },
        "output": {"output_dir": f"./output/{dataset['key']}"},
    }
