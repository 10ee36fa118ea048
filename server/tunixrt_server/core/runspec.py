"""A training run's specification: typed, validated once when the run is created,
stored as JSON, read back by the worker and the Tunix adapter.

No JAX here, so the server checks a run without loading it. Zero in a request
means "the default" (proto3 has no field presence); a preset's own defaults
come before the global ones.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tunixrt.v1 import training_pb2

from . import grpo_spec
from .errors import FieldViolation, bad_field, invalid_argument
from .grpo_spec import SFT, Grpo
from .presets import PRESETS

DEFAULT_PRESET = "tiny-gemma3"
MAX_SYSTEM_CHARS = 10_000
# A max_seq_len of 0 is chosen by the worker from the train split's token lengths.
AUTO = 0


def _limit(default: Any, low: Any, high: Any, *, auto: bool = False) -> Any:
    return field(default=default, metadata={"range": (low, high), "auto": auto})


@dataclass(frozen=True, kw_only=True)
class Hyperparameters:
    max_steps: int = _limit(200, 1, 1_000_000)
    batch_size: int = _limit(8, 1, 4_096)
    max_seq_len: int = _limit(AUTO, 16, 32_768, auto=True)
    # Above 1.0 AdamW diverges on every model here (tunix-rt refuses it too).
    # The server's max_learning_rate (default 1.0) may raise the bound.
    learning_rate: float = _limit(1e-2, 1e-8, 1.0)
    warmup_steps: int = _limit(10, 0, 1_000_000)
    # Exact-match decoding costs seconds on a CPU, so evaluations are not too frequent.
    eval_every_steps: int = _limit(100, -1, 1_000_000)
    checkpoint_every_steps: int = _limit(50, 1, 1_000_000)
    seed: int = _limit(0, -(2**62), 2**62)
    weight_decay: float = _limit(0.0, 0.0, 10.0)
    # Exact match at each eval on a fixed sample of the eval split; -1 turns it off.
    eval_examples: int = _limit(64, -1, 1_024)
    # Stop after this many evals without a better exact match; 0 never stops early.
    early_stopping_evals: int = _limit(0, 0, 10_000)
    # Global-norm gradient clipping; -1 turns it off.
    max_grad_norm: float = _limit(1.0, -1.0, 1e6)
    system_instruction: str = ""
    # Passes over the train split; resolved into max_steps when the run is created.
    num_epochs: int = _limit(0, 0, 10_000)

    @classmethod
    def resolve(
        cls,
        given: Mapping[str, Any],
        *,
        preset: str = DEFAULT_PRESET,
        prefix: str = "hyperparameters",
        max_learning_rate: float = 1.0,
    ) -> Hyperparameters:
        """Fill zero/absent values with defaults (the preset's first) and range-check."""
        preset_defaults = PRESETS[preset].hyperparameters if preset in PRESETS else {}
        values: dict[str, Any] = {}
        bad: list[FieldViolation] = []
        for f in dataclasses.fields(cls):
            value = given.get(f.name) or preset_defaults.get(f.name) or f.default
            values[f.name] = value
            if isinstance(value, str) and len(value) > MAX_SYSTEM_CHARS:
                bad.append(
                    FieldViolation(
                        f"{prefix}.{f.name}", f"must be at most {MAX_SYSTEM_CHARS:,} characters"
                    )
                )
            if "range" not in f.metadata or (f.metadata["auto"] and value == AUTO):
                continue
            low, high = f.metadata["range"]
            if f.name == "learning_rate":
                high = max_learning_rate
            if isinstance(value, float) and not math.isfinite(value):
                bad.append(FieldViolation(f"{prefix}.{f.name}", "must be a finite number"))
            elif not low <= value <= high:
                hint = " (or 0: chosen from the data)" if f.metadata["auto"] else ""
                bad.append(
                    FieldViolation(
                        f"{prefix}.{f.name}", f"must be in [{low}, {high}]{hint}, got {value}"
                    )
                )
        if bad:
            raise invalid_argument(bad, reason="INVALID_HYPERPARAMETERS")
        return cls(**values)

    @classmethod
    def parse_overrides(
        cls, raw: Mapping[str, str], prefix: str = "hyperparameters"
    ) -> dict[str, Any]:
        """String overrides (a map<string,string>) to typed values."""
        defaults = cls()
        kinds = {f.name: type(getattr(defaults, f.name)) for f in dataclasses.fields(cls)}
        parsed: dict[str, Any] = {}
        bad: list[FieldViolation] = []
        for name, text in raw.items():
            kind = kinds.get(name)
            if kind is None:
                known = ", ".join(kinds)
                bad.append(
                    FieldViolation(f"{prefix}[{name}]", f"unknown hyperparameter; known: {known}")
                )
                continue
            try:
                if kind is int and float(text).is_integer():
                    parsed[name] = int(float(text))
                else:
                    parsed[name] = kind(text)
            except ValueError:
                bad.append(
                    FieldViolation(f"{prefix}[{name}]", f"{text!r} is not a {kind.__name__}")
                )
        if bad:
            raise invalid_argument(bad, reason="INVALID_HYPERPARAMETERS")
        return parsed


# A from-scratch model's tokenizer (TokenizerKind); a local_path model brings its own.
BYTES, SUBWORD = "bytes", "subword"
# SUBWORD vocabulary sizes: 256 byte pieces, 4 control pieces and the 2 turn markers
# must fit, with room to learn.
DEFAULT_VOCAB_SIZE = 1024
MIN_VOCAB_SIZE = 320
MAX_VOCAB_SIZE = 32_768
_TOKENIZER_KINDS = {
    training_pb2.TOKENIZER_KIND_UNSPECIFIED: SUBWORD,
    training_pb2.TOKENIZER_KIND_BYTES: BYTES,
    training_pb2.TOKENIZER_KIND_SUBWORD: SUBWORD,
}


@dataclass(frozen=True)
class Model:
    preset: str = DEFAULT_PRESET
    # Absolute path inside the data dir: a previous run's directory, or published weights.
    local_path: str = ""
    # BYTES or SUBWORD for a from-scratch model; "" for one from local_path.
    tokenizer: str = SUBWORD
    vocab_size: int = DEFAULT_VOCAB_SIZE


@dataclass(frozen=True)
class Lora:
    enabled: bool = False
    rank: int = 8
    alpha: float = 16.0


MAX_MESH_AXIS = 4096


@dataclass(frozen=True)
class Mesh:
    """Device mesh axes; fsdp 0 puts every local device on the fsdp axis."""

    fsdp: int = 0
    tp: int = 1


@dataclass(frozen=True)
class RunSpec:
    model: Model = Model()
    hyperparameters: Hyperparameters = Hyperparameters()
    lora: Lora = Lora()
    mesh: Mesh = Mesh()
    method: str = SFT
    grpo: Grpo = field(default_factory=Grpo)  # only with method GRPO

    @classmethod
    def from_request(
        cls,
        run: training_pb2.TrainingRun,
        resolve_local_path: Callable[[str], str],
        max_learning_rate: float = 1.0,
    ) -> RunSpec:
        """Validate a CreateTrainingRun request's run. `resolve_local_path` maps a
        requested local_path to an absolute path inside the data dir (or refuses it)."""
        model = _model(run.model, resolve_local_path)
        method, grpo = grpo_spec.method(run, model.local_path)
        hp_msg = run.hyperparameters
        method_defaults = grpo_spec.HYPERPARAMETERS if method == grpo_spec.GRPO else {}
        hp = Hyperparameters.resolve(
            {**method_defaults, **{f.name: v for f, v in hp_msg.ListFields()}},
            preset=model.preset,
            prefix="training_run.hyperparameters",
            max_learning_rate=max_learning_rate,
        )
        return cls(model, hp, _lora(run.lora), _mesh(run.mesh), method, grpo)

    def with_epochs_resolved(self, train_examples: int, *, steps_given: bool) -> RunSpec:
        """max_steps from num_epochs over `train_examples` (num_epochs is kept, to
        show how the steps came about); INVALID_ARGUMENT when both were given."""
        hp = self.hyperparameters
        if not hp.num_epochs:
            return self
        field = "training_run.hyperparameters"
        if steps_given:
            raise bad_field(f"{field}.num_epochs", "give num_epochs or max_steps, not both")
        steps = math.ceil(hp.num_epochs * train_examples / hp.batch_size)
        low, high = dataclasses.fields(Hyperparameters)[0].metadata["range"]
        if not low <= steps <= high:
            raise bad_field(
                f"{field}.num_epochs",
                f"{hp.num_epochs} epochs of {train_examples:,} examples in batches of "
                f"{hp.batch_size} are {steps:,} steps; at most {high:,}",
            )
        return dataclasses.replace(self, hyperparameters=dataclasses.replace(hp, max_steps=steps))

    def with_max_seq_len(self, value: int) -> RunSpec:
        hp = dataclasses.replace(self.hyperparameters, max_seq_len=value)
        return dataclasses.replace(self, hyperparameters=hp)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"grpo": self.grpo.to_json()}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RunSpec:
        """Tolerates specs stored by older servers: missing keys take their defaults."""

        def part(kind: type[Any], values: Mapping[str, Any] | None) -> Any:
            names = {f.name for f in dataclasses.fields(kind)}
            return kind(**{k: v for k, v in (values or {}).items() if k in names})

        # Runs stored before gradient clipping existed trained without it; so do their resumes.
        hp = {"max_grad_norm": -1.0, **(doc.get("hyperparameters") or {})}
        # Runs stored before trained tokenizers existed used bytes.
        model = {"tokenizer": BYTES, **(doc.get("model") or {})}
        return cls(
            part(Model, model),
            part(Hyperparameters, hp),
            part(Lora, doc.get("lora")),
            part(Mesh, doc.get("mesh")),
            str(doc.get("method", SFT)),
            Grpo.from_json(doc.get("grpo")),
        )


def _model(model: training_pb2.ModelSpec, resolve_local_path: Callable[[str], str]) -> Model:
    preset = model.preset or DEFAULT_PRESET
    if preset not in PRESETS:
        raise bad_field(
            "training_run.model.preset",
            f"unknown preset {preset!r}; known: {', '.join(PRESETS)}",
        )
    given_tokenizer = model.HasField("tokenizer")
    if model.local_path:
        if given_tokenizer:
            raise bad_field(
                "training_run.model.tokenizer",
                "a model from local_path brings its own tokenizer; leave this unset",
            )
        return Model(preset, resolve_local_path(model.local_path), tokenizer="", vocab_size=0)
    if PRESETS[preset].needs_weights:
        raise bad_field(
            "training_run.model.local_path",
            f"preset {preset!r} has no random initialisation; give the directory "
            "(under the server's data dir) holding its *.safetensors, config.json and "
            "tokenizer.model",
        )
    kind = _TOKENIZER_KINDS.get(model.tokenizer.kind)
    if kind is None:
        raise bad_field(
            "training_run.model.tokenizer.kind", f"unknown tokenizer kind {model.tokenizer.kind}"
        )
    vocab_size = model.tokenizer.vocab_size or DEFAULT_VOCAB_SIZE
    if kind == SUBWORD and not MIN_VOCAB_SIZE <= vocab_size <= MAX_VOCAB_SIZE:
        raise bad_field(
            "training_run.model.tokenizer.vocab_size",
            f"must be in [{MIN_VOCAB_SIZE}, {MAX_VOCAB_SIZE}] "
            f"(or 0: {DEFAULT_VOCAB_SIZE}), got {vocab_size}",
        )
    if kind == BYTES and model.tokenizer.vocab_size:
        raise bad_field(
            "training_run.model.tokenizer.vocab_size", "the byte tokenizer has a fixed vocabulary"
        )
    return Model(preset, tokenizer=kind, vocab_size=vocab_size if kind == SUBWORD else 0)


def _mesh(mesh: training_pb2.MeshConfig) -> Mesh:
    for name in ("fsdp", "tp"):
        if not 0 <= getattr(mesh, name) <= MAX_MESH_AXIS:
            raise bad_field(f"training_run.mesh.{name}", f"must be in [0, {MAX_MESH_AXIS}] devices")
    return Mesh(mesh.fsdp, mesh.tp or 1)


def _lora(lora: training_pb2.LoraConfig) -> Lora:
    rank, alpha = lora.rank or Lora.rank, lora.alpha or Lora.alpha
    if lora.enabled and not 1 <= rank <= 1024:
        raise bad_field("training_run.lora.rank", f"must be in [1, 1024], got {rank}")
    if lora.enabled and not (math.isfinite(alpha) and alpha > 0):
        raise bad_field("training_run.lora.alpha", f"must be a positive number, got {alpha}")
    return Lora(lora.enabled, rank, alpha)
