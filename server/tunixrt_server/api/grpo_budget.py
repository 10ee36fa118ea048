"""A GRPO run's answer budget, settled when it is created: max_new_tokens 0 becomes
what the train split's longest completion needs (as EvaluateRun chooses), and a
budget that no reference answer fits in is refused before a worker spends minutes
sampling answers that can never score."""

from __future__ import annotations

import dataclasses

from ..core.errors import bad_field
from ..core.grpo_spec import AUTO, GRPO
from ..core.runspec import RunSpec
from ..storage.datasets import DatasetStore
from ..training import batches
from ..training.run_inputs import load_examples
from .dry_run import MAX_EXAMPLES, model_tokenizer


def settle(spec: RunSpec, store: DatasetStore, dataset_key: str) -> RunSpec:
    """The spec with GrpoConfig.max_new_tokens resolved (SFT runs pass unchanged)."""
    if spec.method != GRPO:
        return spec
    train, _ = load_examples(store, dataset_key, spec.hyperparameters.system_instruction)
    try:
        tokenizer = model_tokenizer(spec.model.local_path)
    except ImportError:  # an API-only install without sentencepiece: the worker decides
        return spec
    # The completion and its end-of-turn marker: what an answer must have room for.
    lengths = [len(tokenizer.encode(e.completion)) + 1 for e in train[:MAX_EXAMPLES]]
    given = spec.grpo.max_new_tokens
    if given == AUTO:
        budget = batches.answer_budget(lengths)  # at most batches.MAX_NEW_TOKENS
    elif lengths and given < min(lengths):
        raise bad_field(
            "training_run.grpo.max_new_tokens",
            f"{given} tokens is too small for any answer: the shortest completion of the "
            f"train split takes {min(lengths)} tokens with its end marker "
            "(0 chooses from the split)",
        )
    else:
        budget = given
    grpo = dataclasses.replace(spec.grpo, max_new_tokens=budget)
    return dataclasses.replace(spec, grpo=grpo)
