"""Generate, EvaluateRun and ExportModel: which checkpoint, what to decode, how to
score it, where to write it.

The work itself happens in the run's resident inference worker
(training/inference_pool.py), which holds the checkpoint's model; this module
validates requests, renders prompts the way training saw them, and scores
answers by exact match.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from tunixrt.v1 import dataset_pb2, training_pb2

from ..core import scoring
from ..core.errors import (
    ApiError,
    FieldViolation,
    bad_field,
    failed_precondition,
    invalid_argument,
)
from ..core.names import inside_data_dir
from ..core.rendering import completion_turn, prompt_turns
from ..core.selection import EVAL
from ..storage.datasets import DatasetStore
from ..storage.runs import RunStore, StoredRun
from ..storage.traces import now_us
from ..training import checkpoints
from ..training.batches import MAX_NEW_TOKENS
from ..training.inference_pool import InferenceError, InferencePool
from .convert import resolve_dataset, split_filter, timestamp

MAX_PROMPTS = 64
MAX_PROMPT_CHARS = 20_000
DEFAULT_NEW_TOKENS = 128
MAX_EVAL_EXAMPLES = 10_000
TIMEOUT_S = 600.0


def _new_tokens(value: int) -> int:
    if not 0 <= value <= MAX_NEW_TOKENS:
        raise bad_field("max_new_tokens", f"must be in [0, {MAX_NEW_TOKENS:,}], got {value}")
    return value


# A run and its directory, by name (NOT_FOUND when there is none).
FindRun = Callable[[str], Awaitable[tuple[StoredRun, Path]]]


class Inference:
    def __init__(
        self,
        runs: RunStore,
        datasets: DatasetStore,
        pool: InferencePool,
        find_run: FindRun,
        data_dir: Path,
    ) -> None:
        self._runs = runs
        self._datasets = datasets
        self._pool = pool
        self._find_run = find_run
        self._data_dir = data_dir

    async def _ask(
        self, run: StoredRun, run_dir: Path, choice: str, what: str, **request: Any
    ) -> dict[str, Any]:
        """One request to the run's inference worker, on the checkpoint `choice` names."""
        subject = f"trainingRuns/{run.id}"
        try:
            ref = await asyncio.to_thread(checkpoints.resolve, run_dir, choice)
        except ValueError as exc:
            raise bad_field("checkpoint", str(exc)) from None
        except checkpoints.NoSuchCheckpoint as exc:
            raise failed_precondition(
                f"{subject}: {exc}", reason="NO_CHECKPOINT", subject=subject
            ) from None
        request["checkpoint"] = {"directory": ref.directory, "step": ref.step}
        try:
            return await self._pool.call(run.id, run_dir, request, TIMEOUT_S)
        except InferenceError as exc:
            raise failed_precondition(
                f"{what} failed for {subject}: {exc}",
                reason=f"{what.upper()}_FAILED",
                subject=subject,
            ) from None

    async def _decode(
        self,
        run: StoredRun,
        run_dir: Path,
        choice: str,
        prompts: list[str],
        **options: Any,
    ) -> dict[str, Any]:
        system = run.spec.hyperparameters.system_instruction
        rendered = [prompt_turns(p, system) for p in prompts]
        return await self._ask(run, run_dir, choice, "generation", prompts=rendered, **options)

    async def export_model(
        self, request: training_pb2.ExportModelRequest
    ) -> training_pb2.ExportModelResponse:
        out = inside_data_dir(self._data_dir, request.output_dir, "output_dir")
        if out.exists():
            raise ApiError(
                "ALREADY_EXISTS",
                f"{request.output_dir} already exists; choose a new output_dir",
                "OUTPUT_EXISTS",
            )
        run, run_dir = await self._find_run(request.name)
        await asyncio.to_thread(out.parent.mkdir, parents=True, exist_ok=True)
        answer = await self._ask(run, run_dir, request.checkpoint, "export", export=str(out))
        files = await asyncio.to_thread(
            lambda: [(p.name, p.stat().st_size) for p in sorted(out.iterdir())]
        )
        return training_pb2.ExportModelResponse(
            output_dir=str(out.relative_to(self._data_dir)),
            step=answer["step"],
            files=[training_pb2.ModelFile(name=n, size_bytes=size) for n, size in files],
        )

    async def generate(
        self, request: training_pb2.GenerateRequest
    ) -> training_pb2.GenerateResponse:
        prompts = list(request.prompts)
        bad = [
            FieldViolation(f"prompts[{i}]", f"must be 1..{MAX_PROMPT_CHARS:,} characters")
            for i, p in enumerate(prompts)
            if not 0 < len(p) <= MAX_PROMPT_CHARS
        ]
        if not 0 < len(prompts) <= MAX_PROMPTS:
            bad.insert(0, FieldViolation("prompts", f"give 1..{MAX_PROMPTS} prompts"))
        if not (math.isfinite(request.temperature) and 0 <= request.temperature <= 10):
            bad.append(FieldViolation("temperature", "must be in [0, 10]"))
        if bad:
            raise invalid_argument(bad)
        max_new = _new_tokens(request.max_new_tokens) or DEFAULT_NEW_TOKENS
        run, run_dir = await self._find_run(request.name)
        answer = await self._decode(
            run,
            run_dir,
            request.checkpoint,
            prompts,
            max_new_tokens=max_new,
            temperature=request.temperature,
            seed=request.seed,
        )
        return training_pb2.GenerateResponse(
            generations=[
                training_pb2.Generation(prompt=p, text=t, answer=scoring.extract_answer(t))
                for p, t in zip(prompts, answer["texts"], strict=True)
            ],
            step=answer["step"],
        )

    async def evaluate(self, request: training_pb2.EvaluateRunRequest) -> training_pb2.Evaluation:
        split = split_filter(request.split) if request.split else EVAL
        if not 0 <= request.max_examples <= MAX_EVAL_EXAMPLES:
            raise bad_field("max_examples", f"must be in [0, {MAX_EVAL_EXAMPLES:,}]")
        max_new = _new_tokens(request.max_new_tokens)
        run, run_dir = await self._find_run(request.name)
        dataset = await resolve_dataset(
            self._datasets, request.dataset or run.dataset_key, "dataset"
        )
        limit = request.max_examples or MAX_EVAL_EXAMPLES
        examples, references = await asyncio.to_thread(self._examples, dataset.seq, split, limit)
        if not examples:
            raise failed_precondition(
                f"datasets/{dataset.key} has no examples in that split",
                reason="EMPTY_SPLIT",
                subject=f"datasets/{dataset.key}",
            )
        answer = await self._decode(
            run,
            run_dir,
            request.checkpoint,
            [e.prompt for e in examples],
            max_new_tokens=max_new,  # 0: the references' longest answer and a margin
            references=[] if max_new else references,
        )
        evaluation = training_pb2.Evaluation(
            split=dataset_pb2.DatasetSplit.ValueType(split or dataset_pb2.DATASET_SPLIT_ALL),
            step=answer["step"],
            create_time=timestamp(now_us()),
            max_new_tokens=answer["max_new_tokens"],
            dataset=f"datasets/{dataset.key}",
        )
        json_format.ParseDict(scoring.score(examples, answer["texts"]), evaluation)
        stored = json_format.MessageToDict(evaluation, preserving_proto_field_name=True)
        await asyncio.to_thread(self._runs.add_evaluation, run.id, stored)
        return evaluation

    def _examples(
        self, dataset_seq: int, split: int | None, limit: int
    ) -> tuple[list[scoring.Example], list[str]]:
        examples, references = [], []
        for row in itertools.islice(self._datasets.rows(dataset_seq, split, meta=True), limit):
            examples.append(
                scoring.Example(row.prompt, row.final_answer, str(row.meta.get("category", "")))
            )
            references.append(completion_turn(json.loads(row.steps_json), row.final_answer))
        return examples, references
