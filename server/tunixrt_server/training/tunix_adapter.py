"""The one module that knows Tunix, JAX, Flax, Optax, Orbax and qwix.

Tunix's API moves between releases (google-tunix is pinned to 0.1.7); whatever
depends on its internals lives here and nowhere else. Facts this relies on:
per-step metrics reach jax.monitoring listeners one step late (when the next
step is dispatched, i.e. as soon as the step's loss is ready); trainer.close()
clears every listener, so one run per process; ending the data iterator stops
train() cleanly and still saves a final checkpoint; a new trainer on the same
checkpoint directory resumes from its newest step.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jax.numpy as jnp
import optax
import orbax.checkpoint as ocp
import qwix
from flax import nnx
from tunix.generate import sampler as sampler_lib
from tunix.models.gemma3 import model as gemma3
from tunix.models.gemma3 import params_safetensors
from tunix.sft import metrics_logger, peft_trainer
from tunix.sft import utils as sft_utils
from tunix.sft.checkpoint_manager import CheckpointManager

from ..rendering import END
from . import batches
from .presets import PRESETS
from .tokenizer import ByteTokenizer

MODEL_FILE = "model.json"
CHECKPOINT_DIR = "checkpoints"
LORA_MODULES = ".*attn.*|.*mlp.*"
# Eval cost stays bounded whatever the eval split's size.
MAX_EVAL_BATCHES = 32


class Listener(Protocol):
    def on_step(self, step: int, loss: float, learning_rate: float, tokens: int) -> None: ...
    def on_eval(self, step: int, loss: float) -> None: ...
    def on_checkpoint(self, step: int, path: str) -> None: ...


@dataclass
class TrainSpec:
    run_dir: Path
    preset: str
    local_path: str
    hp: dict[str, Any]
    lora: dict[str, Any] | None  # {"rank", "alpha"} or None


# ---- models and tokenizers ----------------------------------------------------


def describe_model(preset: str, local_path: str, lora: dict[str, Any] | None) -> dict[str, Any]:
    """What a run's model.json records: enough to rebuild the model for Generate."""
    if local_path and (Path(local_path) / MODEL_FILE).exists():
        source = json.loads((Path(local_path) / MODEL_FILE).read_text())
        if source.get("lora"):
            raise ValueError(f"{local_path} holds LoRA adapters; start from a full fine-tune")
        return {**source, "init": {"run_dir": local_path}, "lora": lora}
    spec = PRESETS[preset]
    desc: dict[str, Any] = {"preset": preset, "lora": lora}
    if spec.needs_weights:
        desc |= {
            "named_config": spec.named_config,
            "tokenizer": str(Path(local_path) / "tokenizer.model"),
            "init": {"safetensors": local_path},
        }
    else:
        desc |= {"config": spec.config, "tokenizer": "bytes", "init": {}}
    return desc


def _config(desc: dict[str, Any]) -> gemma3.ModelConfig:
    if desc.get("named_config"):
        base = getattr(gemma3.ModelConfig, desc["named_config"])()
        return gemma3.ModelConfig(**{**base.__dict__, "param_dtype": jnp.float32})
    # float32: bf16 params with AdamW give NaN losses on CPU.
    return gemma3.ModelConfig(**desc["config"], param_dtype=jnp.float32)


def load_tokenizer(desc: dict[str, Any]) -> Any:
    if desc["tokenizer"] == "bytes":
        return ByteTokenizer()
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor()
    processor.Load(desc["tokenizer"])
    return processor


def _build_model(desc: dict[str, Any], seed: int) -> nnx.Module:
    config = _config(desc)
    init = desc.get("init", {})
    if "safetensors" in init:
        model = params_safetensors.create_model_from_safe_tensors(
            init["safetensors"], config, dtype=jnp.float32
        )
    else:
        model = gemma3.Gemma3(config, rngs=nnx.Rngs(seed))
        if "run_dir" in init:
            step, _ = CheckpointManager(str(Path(init["run_dir"]) / CHECKPOINT_DIR)).maybe_restore(
                model
            )
            if step == 0:
                raise ValueError(f"{init['run_dir']} has no checkpoint to start from")
    lora = desc.get("lora")
    if lora:
        provider = qwix.LoraProvider(
            module_path=LORA_MODULES, rank=lora["rank"], alpha=lora["alpha"]
        )
        model = qwix.apply_lora_to_model(
            model, provider, rngs=nnx.Rngs(seed + 1), **model.get_model_input()
        )
    return model  # type: ignore[no-any-return]


# ---- training -----------------------------------------------------------------


def _model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """Attention and positions follow the padding; the loss follows the completion."""
    padding = batch["padding_mask"]
    return {
        "input_tokens": batch["tokens"],
        "input_mask": batch["completion_mask"],
        "positions": sft_utils.build_positions_from_mask(padding),
        "attention_mask": sft_utils.make_causal_attn_mask(padding),
    }


class _MetricsBackend:
    """Receives Tunix's jax.monitoring scalars (`{prefix}/{mode}/{name}`)."""

    def __init__(self, listener: Listener, tokens_of_step: Callable[[int], int]) -> None:
        self._listener = listener
        self._tokens_of_step = tokens_of_step
        self._lr = 0.0
        self._pending: tuple[int, float] | None = None
        self.after_step: Callable[[], None] = lambda: None

    def log_scalar(self, event: str, value: Any, **kwargs: Any) -> None:
        step = int(kwargs.get("step") or 0)
        if event.endswith("/train/loss"):
            self._flush()
            self._pending = (step, float(value))
        elif event.endswith("/train/learning_rate"):
            self._lr = float(value)
            self._flush()
        elif event.endswith("/eval/loss"):
            self._listener.on_eval(step, float(value))

    def _flush(self) -> None:
        # The learning rate of a step is logged just after its loss.
        if self._pending is not None:
            step, loss = self._pending
            self._pending = None
            self._listener.on_step(step, loss, self._lr, self._tokens_of_step(step))
            self.after_step()

    def close(self) -> None:
        self._flush()


def _optimizer(hp: dict[str, Any]) -> optax.GradientTransformation:
    warmup = min(hp["warmup_steps"], max(hp["max_steps"] - 1, 0))
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=hp["learning_rate"],
        warmup_steps=warmup,
        decay_steps=max(hp["max_steps"], warmup + 1),
        end_value=hp["learning_rate"] * 0.1,
    )
    return optax.inject_hyperparams(optax.adamw)(
        learning_rate=schedule, weight_decay=hp["weight_decay"]
    )


def train(
    spec: TrainSpec,
    train_examples: Sequence[batches.Example],
    eval_examples: Sequence[batches.Example],
    listener: Listener,
    should_stop: Callable[[], bool],
) -> int:
    """Trains up to hp.max_steps (or until should_stop); returns the last saved step."""
    hp = spec.hp
    desc_path = spec.run_dir / MODEL_FILE
    if desc_path.exists():  # a resume: same model as the first attempt
        desc = json.loads(desc_path.read_text())
    else:
        desc = describe_model(spec.preset, spec.local_path, spec.lora)
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        desc_path.write_text(json.dumps(desc, indent=2))
    tokenizer = load_tokenizer(desc)
    train_data = batches.encode(train_examples, tokenizer, hp["max_seq_len"])
    eval_data = batches.encode(eval_examples, tokenizer, hp["max_seq_len"])
    model = _build_model(desc, hp["seed"])

    tokens_per_batch: dict[int, int] = {}

    def batch_stream() -> Iterator[dict[str, Any]]:
        stream = batches.train_batches(train_data, hp["batch_size"], hp["seed"], should_stop)
        for step, batch in enumerate(stream, 1):
            tokens_per_batch[step] = int(batch["padding_mask"].sum())
            yield batch

    backend = _MetricsBackend(listener, lambda step: tokens_per_batch.pop(step, 0))
    checkpoint_root = spec.run_dir / CHECKPOINT_DIR
    config = peft_trainer.TrainingConfig(
        eval_every_n_steps=max(hp["eval_every_steps"], 1),
        max_steps=hp["max_steps"],
        checkpoint_root_directory=str(checkpoint_root),
        # Orbax would otherwise save at most every 180 s whatever the step interval.
        checkpointing_options=ocp.CheckpointManagerOptions(
            save_interval_steps=hp["checkpoint_every_steps"], max_to_keep=2
        ),
        metrics_logging_options=metrics_logger.MetricsLoggerOptions(
            log_dir=str(spec.run_dir / "metrics"),
            backend_kwargs={"custom_backend": [lambda: backend]},
        ),
        pbar_description=None,
    )
    trainer = peft_trainer.PeftTrainer(model, _optimizer(hp), config)
    trainer = trainer.with_gen_model_input_fn(_model_inputs)

    saved = [trainer.checkpoint_manager.latest_step() or 0]

    def report_checkpoint() -> None:
        latest = trainer.checkpoint_manager.latest_step() or 0
        if latest > saved[0]:
            saved[0] = latest
            listener.on_checkpoint(latest, str(checkpoint_root / str(latest)))

    backend.after_step = report_checkpoint
    evals = (
        batches.eval_batches(eval_data, hp["batch_size"])[:MAX_EVAL_BATCHES]
        if hp["eval_every_steps"] > 0 and len(eval_data)
        else None
    )
    trainer.train(batch_stream(), evals)  # closes the trainer: final save, listeners cleared
    backend.close()
    report_checkpoint()
    return saved[0]


# ---- inference ----------------------------------------------------------------


@dataclass
class Generator:
    """A run's newest checkpoint loaded for sampling."""

    sampler: sampler_lib.Sampler
    eos: list[int]
    step: int
    max_prompt_tokens: int

    def __call__(
        self, prompts: Sequence[str], max_new_tokens: int, temperature: float, seed: int
    ) -> list[str]:
        out = self.sampler(
            list(prompts),
            max_generation_steps=max_new_tokens,
            max_prompt_length=self.max_prompt_tokens,
            eos_tokens=self.eos,
            temperature=temperature,
            top_p=1.0 if temperature > 0 else None,
            seed=seed,
        )
        return [text.split(END, 1)[0] for text in out.text]


def load_generator(run_dir: Path, max_prompt_tokens: int, max_new_tokens: int) -> Generator:
    desc = json.loads((run_dir / MODEL_FILE).read_text())
    model = _build_model({**desc, "init": {}}, seed=0)
    step, _ = CheckpointManager(str(run_dir / CHECKPOINT_DIR)).maybe_restore(
        model, restore_only_lora_params=bool(desc.get("lora"))
    )
    if step == 0:
        raise FileNotFoundError(f"no checkpoint under {run_dir / CHECKPOINT_DIR}")
    tokenizer = load_tokenizer(desc)
    config = _config(desc)
    cache = sampler_lib.CacheConfig(
        cache_size=max_prompt_tokens + max_new_tokens + 8,
        num_layers=config.num_layers,
        num_kv_heads=config.num_kv_heads,
        head_dim=config.head_dim,
    )
    eos = [tokenizer.eos_id()]
    end_ids = tokenizer.encode(END)
    if len(end_ids) == 1:
        eos.append(end_ids[0])
    return Generator(sampler_lib.Sampler(model, tokenizer, cache), eos, step, max_prompt_tokens)


def prompt_token_count(desc_dir: Path, prompts: Sequence[str]) -> int:
    tokenizer = load_tokenizer(json.loads((desc_dir / MODEL_FILE).read_text()))
    return max(len(tokenizer.encode(p)) + 1 for p in prompts)
