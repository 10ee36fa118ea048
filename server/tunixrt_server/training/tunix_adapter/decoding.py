"""Decoding with a Tunix Sampler in a few fixed shapes, so repeated calls reuse compiles.

XLA compiles the sampler once per (batch, prompt length, cache size). Prompts
are left-padded to a multiple of 64 tokens, the answer budget is rounded up to
a multiple of 64 (the output is then cut back to what was asked), and batches
are padded to a power of two, at most MAX_BATCH.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flax import nnx
from tunix.generate import sampler as sampler_lib

from ...core.rendering import END
from ..checkpoints import CheckpointRef
from . import hf_export, models

SHAPE_MULTIPLE = 64
MAX_BATCH = 64
# Samplers (one per cache size) kept with their compiled functions.
MAX_SAMPLERS = 6


def _round_up(value: int, multiple: int = SHAPE_MULTIPLE) -> int:
    return max(multiple, math.ceil(value / multiple) * multiple)


def _batch_size(n: int) -> int:
    return min(MAX_BATCH, 1 << max(0, n - 1).bit_length())


def eos_ids(tokenizer: Any) -> list[int]:
    """The ids that end an answer: EOS, and the end-of-turn marker when it is one token."""
    ids = [tokenizer.eos_id()]
    end_ids = tokenizer.encode(END)
    if len(end_ids) == 1:
        ids.append(end_ids[0])
    return ids


class Decoder:
    """Samples from `model` as it is now: the sampler shares the model's variables."""

    def __init__(self, model: nnx.Module, tokenizer: Any, config: Any) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self._config = config
        self._samplers: OrderedDict[int, sampler_lib.Sampler] = OrderedDict()
        self.eos = eos_ids(tokenizer)

    def token_count(self, text: str) -> int:
        return len(self._tokenizer.encode(text))

    def refresh(self) -> None:
        """After the model's parameters were replaced (a restore)."""
        for sampler in self._samplers.values():
            sampler.transformer_state = nnx.variables(self._model)

    def _sampler(self, cache_size: int) -> sampler_lib.Sampler:
        sampler = self._samplers.pop(cache_size, None)
        if sampler is None:
            cache = sampler_lib.CacheConfig(
                cache_size=cache_size,
                num_layers=self._config.num_layers,
                num_kv_heads=self._config.num_kv_heads,
                head_dim=self._config.head_dim,
            )
            sampler = sampler_lib.Sampler(self._model, self._tokenizer, cache)
        self._samplers[cache_size] = sampler
        while len(self._samplers) > MAX_SAMPLERS:
            self._samplers.popitem(last=False)
        return sampler

    def __call__(
        self,
        prompts: Sequence[str],
        max_new_tokens: int,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> list[str]:
        """One model turn per prompt (the text before the end-of-turn marker).

        Prompts are decoded longest first, in chunks of MAX_BATCH: a chunk decodes
        until its last answer ends, and prompts of a kind (the same task, the same
        length of answer) mostly share a length, so sorted chunks end sooner."""
        if not prompts:
            return []
        counts = [self.token_count(p) for p in prompts]
        prompt_len = _round_up(1 + max(counts))
        budget = _round_up(max_new_tokens)
        sampler = self._sampler(prompt_len + budget)
        order = sorted(range(len(prompts)), key=lambda i: -counts[i])
        texts = [""] * len(prompts)
        for start in range(0, len(order), MAX_BATCH):
            chunk = order[start : start + MAX_BATCH]
            size = _batch_size(len(chunk))  # a short last chunk gets its own smaller shape
            padded = [prompts[i] for i in chunk] + [prompts[chunk[-1]]] * (size - len(chunk))
            out = sampler(
                padded,
                max_generation_steps=budget,
                max_prompt_length=prompt_len,
                eos_tokens=self.eos,
                temperature=temperature,
                top_p=1.0 if temperature > 0 else None,
                seed=seed,
            )
            for index, tokens in zip(chunk, out.tokens, strict=False):
                text = self._tokenizer.decode([int(t) for t in tokens[:max_new_tokens]])
                texts[index] = text.split(END, 1)[0]
        return texts


class InferenceModel:
    """A finished run's model, switching between its checkpoints on demand."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        desc = models.read_description(run_dir)
        self._lora = bool(desc.get("lora"))
        # A full checkpoint holds every weight; a LoRA one only the adapters, so their
        # base is rebuilt the way the run built it.
        self._desc = desc
        self._model = models.build(desc, initialise=self._lora)
        self.decoder = Decoder(self._model, models.load_tokenizer(desc), models.config(desc))
        self.loaded: CheckpointRef | None = None

    def load(self, ref: CheckpointRef) -> None:
        if ref == self.loaded:
            return
        if models.restore(self._model, self.run_dir, ref, lora=self._lora) != ref.step:
            raise FileNotFoundError(f"checkpoint {ref.path(self.run_dir)} could not be read")
        self.loaded = ref
        self.decoder.refresh()

    def export(self, out: Path) -> None:
        """The loaded checkpoint as a model directory (hf_export.py)."""
        assert self.loaded is not None
        source = {
            "run": f"trainingRuns/{self.run_dir.name}",
            "checkpoint": self.loaded.directory,
            "step": self.loaded.step,
        }
        hf_export.write(self._model, self._desc, out, source)
