"""Client's TrainingService methods (a mixin: Client holds the channel and stubs)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .convert import dataset_split, run_state, training_method
from .stream import ResumingStream, Stream
from .v1 import training_pb2, training_pb2_grpc

T = TypeVar("T")


class TrainingCalls:
    training: training_pb2_grpc.TrainingServiceStub
    _metadata: tuple[tuple[str, str], ...]

    if TYPE_CHECKING:  # provided by Client

        def _call(
            self, method: Callable[..., T], request: Any, timeout: float | None = None
        ) -> T: ...

        def _pages(self, fetch: Callable[[str], tuple[list[T], str]]) -> Iterator[T]: ...

    def create_training_run(
        self,
        dataset: str,
        *,
        preset: str = "",
        local_path: str = "",
        tokenizer: str = "",
        vocab_size: int = 0,
        hyperparameters: training_pb2.Hyperparameters | dict[str, Any] | None = None,
        lora_rank: int = 0,
        lora_alpha: float = 0.0,
        mesh: dict[str, int] | None = None,
        created_by: str = "",
        labels: dict[str, str] | None = None,
        request_id: str = "",
        validate_only: bool = False,
        method: str = "",
        grpo: training_pb2.GrpoConfig | dict[str, Any] | None = None,
        rewards: Mapping[str, float] | None = None,
    ) -> training_pb2.TrainingRun:
        """Queue a run; zero/absent hyperparameters take the server's defaults.
        `lora_rank` > 0 trains LoRA adapters instead of all weights. `mesh`, e.g.
        {"fsdp": 4} or {"fsdp": 2, "tp": 2}, spreads it over the worker's devices
        (default: all of them on fsdp). `tokenizer` ("subword", the default, or
        "bytes") and `vocab_size` choose a from-scratch model's tokenizer.
        `validate_only` checks the run and returns it as it would be, storing nothing;
        hyperparameters={"num_epochs": N} trains N passes instead of max_steps.
        `method="grpo"` reinforces a model (local_path: a finished run or an exported
        model) with the server's rewards, e.g. rewards={"exact_match": 1, "format": 0.1};
        `grpo` holds the rest of GrpoConfig, e.g. {"num_generations": 8}."""
        hp = (
            hyperparameters
            if isinstance(hyperparameters, training_pb2.Hyperparameters)
            else training_pb2.Hyperparameters(**(hyperparameters or {}))
        )
        run = training_pb2.TrainingRun(
            dataset=dataset,
            model=model_spec(preset, local_path, tokenizer, vocab_size),
            hyperparameters=hp,
            lora=training_pb2.LoraConfig(enabled=lora_rank > 0, rank=lora_rank, alpha=lora_alpha),
            mesh=training_pb2.MeshConfig(**(mesh or {})),
            created_by=created_by,
            labels=labels or {},
        )
        if method:
            run.method = training_method(method)
        if grpo is not None or rewards:
            config = (
                grpo
                if isinstance(grpo, training_pb2.GrpoConfig)
                else training_pb2.GrpoConfig(**(grpo or {}))
            )
            for name, weight in (rewards or {}).items():
                config.rewards.add(name=name, weight=weight)
            run.grpo.CopyFrom(config)
        request = training_pb2.CreateTrainingRunRequest(
            training_run=run, request_id=request_id, validate_only=validate_only
        )
        return self._call(self.training.CreateTrainingRun, request)

    def get_training_run(self, name: str) -> training_pb2.TrainingRun:
        request = training_pb2.GetTrainingRunRequest(name=name)
        return self._call(self.training.GetTrainingRun, request)

    def list_training_runs(
        self, filter: str = "", *, state: str = "", page_size: int = 0
    ) -> Iterator[training_pb2.TrainingRun]:
        """Runs newest first; `filter` e.g. 'dataset = "demo-v1" AND labels.team = "a"'."""
        state_value = run_state(state or "UNSPECIFIED")

        def fetch(token: str) -> tuple[list[training_pb2.TrainingRun], str]:
            request = training_pb2.ListTrainingRunsRequest(
                page_size=page_size, page_token=token, state=state_value, filter=filter
            )
            page = self._call(self.training.ListTrainingRuns, request)
            return list(page.training_runs), page.next_page_token

        return self._pages(fetch)

    def cancel_training_run(self, name: str) -> training_pb2.TrainingRun:
        request = training_pb2.CancelTrainingRunRequest(name=name)
        return self._call(self.training.CancelTrainingRun, request)

    def resume_training_run(self, name: str) -> training_pb2.TrainingRun:
        request = training_pb2.ResumeTrainingRunRequest(name=name)
        return self._call(self.training.ResumeTrainingRun, request)

    def delete_training_run(self, name: str) -> None:
        """An ended run, with its events, checkpoints and logs."""
        request = training_pb2.DeleteTrainingRunRequest(name=name)
        self._call(self.training.DeleteTrainingRun, request)

    def watch_training_run(
        self,
        name: str,
        *,
        since_step: int = 0,
        after_sequence: int = 0,
        timeout: float | None = None,
    ) -> Stream[training_pb2.TrainingEvent]:
        """History, then live events, until the run ends (or `timeout` seconds pass:
        DeadlineExceeded). A connection lost or a server restarting (UNAVAILABLE) is
        ridden out for up to a minute: the watch reconnects after the last event it
        returned, so nothing is missed or repeated. Closing the stream early (or
        dropping it after breaking out of a for loop) cancels the call."""
        deadline = time.monotonic() + timeout if timeout else None

        def reopen(last: training_pb2.TrainingEvent | None) -> Any:
            request = training_pb2.WatchTrainingRunRequest(
                name=name,
                since_step=since_step if last is None else 0,
                after_sequence=after_sequence if last is None else last.sequence,
            )
            left = max(deadline - time.monotonic(), 0.001) if deadline else None
            return self.training.WatchTrainingRun(request, timeout=left, metadata=self._metadata)

        return ResumingStream(reopen)

    def generate(
        self,
        name: str,
        prompts: list[str],
        *,
        max_new_tokens: int = 0,
        temperature: float = 0.0,
        seed: int = 0,
        checkpoint: str = "",
        timeout: float = 600.0,
    ) -> training_pb2.GenerateResponse:
        """`checkpoint`: "latest" (default), "best" (exact match during training) or
        a step number."""
        request = training_pb2.GenerateRequest(
            name=name,
            prompts=prompts,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            seed=seed,
            checkpoint=checkpoint,
        )
        return self._call(self.training.Generate, request, timeout)

    def evaluate_run(
        self,
        name: str,
        *,
        split: str = "EVAL",
        max_examples: int = 0,
        max_new_tokens: int = 0,
        checkpoint: str = "",
        dataset: str = "",
        timeout: float = 1800.0,
    ) -> training_pb2.Evaluation:
        """Exact match on a split of the run's dataset (or of `dataset`). `max_new_tokens`
        0 sizes the answer budget from the split's longest reference; `checkpoint` as
        for generate."""
        request = training_pb2.EvaluateRunRequest(
            name=name,
            split=dataset_split(split),
            max_examples=max_examples,
            max_new_tokens=max_new_tokens,
            checkpoint=checkpoint,
            dataset=dataset,
        )
        return self._call(self.training.EvaluateRun, request, timeout)

    def export_model(
        self, name: str, output_dir: str, *, checkpoint: str = "", timeout: float = 1800.0
    ) -> training_pb2.ExportModelResponse:
        """Write a checkpoint as a model directory (Hugging Face layout: safetensors with
        LoRA merged, config.json, tokenizer) at `output_dir` under the server's data
        dir; another run can start from it with `local_path=output_dir`."""
        request = training_pb2.ExportModelRequest(
            name=name, output_dir=output_dir, checkpoint=checkpoint
        )
        return self._call(self.training.ExportModel, request, timeout)


def model_spec(
    preset: str, local_path: str, tokenizer: str, vocab_size: int
) -> training_pb2.ModelSpec:
    model = training_pb2.ModelSpec(preset=preset, local_path=local_path)
    if tokenizer or vocab_size:  # unset: the server's default, or the local_path model's own
        kind = f"TOKENIZER_KIND_{tokenizer.upper()}" if tokenizer else "TOKENIZER_KIND_UNSPECIFIED"
        model.tokenizer.kind = training_pb2.TokenizerKind.Value(kind)
        model.tokenizer.vocab_size = vocab_size
    return model
