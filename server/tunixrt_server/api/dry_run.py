"""What a validate_only CreateTrainingRun adds to the spec's checks: the run's data
as the worker would prepare it. The train split is tokenized with the run's own
tokenizer (a SUBWORD one is trained here, as the worker would train it), so the
answer shows the max_seq_len the run would choose and how many examples it would
truncate or drop. No JAX: tokenizers and batching are plain Python and numpy."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from ..core.presets import PRESETS
from ..core.runspec import AUTO, BYTES, SUBWORD, RunSpec
from ..storage.datasets import DatasetStore
from ..training import batches, hf_layout, subword, tokenizer
from ..training.checkpoints import MODEL_FILE
from ..training.run_inputs import load_examples

# A dry run reads at most this many train examples (the counts are then of those).
MAX_EXAMPLES = 20_000


def model_tokenizer(local_path: str) -> Any:
    """The tokenizer of a model a run starts from: a previous run's (its model.json
    says which) or a model directory's."""
    run_model = Path(local_path) / MODEL_FILE
    if run_model.exists():
        path = json.loads(run_model.read_text())["tokenizer"]
    else:
        path = hf_layout.inspect(Path(local_path)).tokenizer
    return tokenizer.load(path)


def _tokenizer(spec: RunSpec, train: list[batches.Example], tmp: Path) -> Any:
    model = spec.model
    if model.local_path:
        return model_tokenizer(model.local_path)
    if model.tokenizer == BYTES:
        return tokenizer.load(hf_layout.BYTES)
    assert model.tokenizer == SUBWORD
    texts = (e.prompt + e.completion for e in train)
    subword.train(texts, model.vocab_size, tmp / hf_layout.SENTENCEPIECE)
    return tokenizer.load(str(tmp / hf_layout.SENTENCEPIECE))


def prepare(spec: RunSpec, store: DatasetStore, dataset_key: str) -> tuple[RunSpec, dict[str, Any]]:
    """The spec with the max_seq_len the run would use, and the metrics the data
    would have: truncated_examples and dropped_examples."""
    hp = spec.hyperparameters
    train, _ = load_examples(store, dataset_key, hp.system_instruction)
    train = train[:MAX_EXAMPLES]
    with tempfile.TemporaryDirectory(prefix="tunixrt-dry-run-") as tmp:
        try:
            run_tokenizer = _tokenizer(spec, train, Path(tmp))
        except ImportError:  # an API-only install without the [train] extra (sentencepiece)
            return spec, {}
        max_seq_len = hp.max_seq_len
        if max_seq_len == AUTO:
            cap = PRESETS[spec.model.preset].max_context
            max_seq_len = batches.choose_max_seq_len(
                batches.token_lengths(train, run_tokenizer), cap
            )
        encoded = batches.encode(train, run_tokenizer, max_seq_len)
    metrics = {"truncated_examples": encoded.truncated, "dropped_examples": encoded.dropped}
    return spec.with_max_seq_len(max_seq_len), metrics
