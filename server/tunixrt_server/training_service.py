"""tunixrt.v1.TrainingService: runs, their event streams, Generate and EvaluateRun."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format, timestamp_pb2

from tunixrt.v1 import dataset_pb2, training_pb2, training_pb2_grpc

from . import hyperparams, scoring
from .auth import current_caller
from .dataset_service import DatasetService, split_filter
from .errors import (
    ApiError,
    FieldViolation,
    bad_field,
    failed_precondition,
    invalid_argument,
    not_found,
)
from .names import check_request_id, parse_uuid_name
from .pagination import decode_token, encode_token, page_size
from .rendering import prompt_turns
from .selection import EVAL
from .storage.datasets import DatasetStore
from .storage.runs import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    TERMINAL,
    Event,
    RunExists,
    RunStore,
    StoredRun,
)
from .storage.traces import now_us
from .training.presets import PRESETS
from .training.supervisor import GenerateError, Supervisor

MAX_PROMPTS = 64
MAX_PROMPT_CHARS = 20_000
MAX_NEW_TOKENS = 1_024
DEFAULT_NEW_TOKENS = 128
MAX_EVAL_EXAMPLES = 10_000
GENERATE_TIMEOUT_S = 600.0
# A watcher re-reads the log at least this often even without a wake-up.
WATCH_POLL_S = 1.0
EVENT_PAGE = 1_000
_STATE_NAMES: dict[int, str] = {v: k for k, v in training_pb2.TrainingRunState.items()}


def _timestamp(micros: int | None) -> timestamp_pb2.Timestamp | None:
    if micros is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromMicroseconds(micros)
    return stamp


def run_to_proto(run: StoredRun) -> training_pb2.TrainingRun:
    spec = run.spec
    msg = training_pb2.TrainingRun(
        name=f"trainingRuns/{run.id}",
        dataset=f"datasets/{run.dataset_key}",
        model=training_pb2.ModelSpec(**spec["model"]),
        hyperparameters=training_pb2.Hyperparameters(**spec["hyperparameters"]),
        lora=training_pb2.LoraConfig(**spec["lora"]),
        state=training_pb2.TrainingRunState.ValueType(run.state),
        state_message=run.state_message,
        created_by=run.created_by,
        labels=run.labels,
        create_time=_timestamp(run.create_time_us),
        start_time=_timestamp(run.start_time_us),
        end_time=_timestamp(run.end_time_us),
        metrics=training_pb2.RunMetrics(**run.metrics),
        checkpoint_step=run.checkpoint_step,
    )
    for evaluation in run.evaluations:
        json_format.ParseDict(evaluation, msg.evaluations.add())
    return msg


def event_to_proto(event: Event) -> training_pb2.TrainingEvent:
    msg = training_pb2.TrainingEvent(
        sequence=event.sequence, step=event.step, time=_timestamp(event.time_us)
    )
    getattr(msg, event.kind).CopyFrom(type(getattr(msg, event.kind))(**event.payload))
    return msg


class TrainingService(training_pb2_grpc.TrainingServiceServicer):
    def __init__(
        self,
        runs: RunStore,
        datasets: DatasetStore,
        dataset_service: DatasetService,
        supervisor: Supervisor,
        data_dir: Path,
        max_queued: int = 100,
    ) -> None:
        self._runs = runs
        self._datasets = datasets
        self._dataset_service = dataset_service
        self._supervisor = supervisor
        self._data_dir = data_dir.resolve()
        self._max_queued = max_queued

    async def _get(self, name: str, field: str = "name") -> StoredRun:
        run_id = parse_uuid_name(name, "trainingRuns", field)
        run = await asyncio.to_thread(self._runs.get, run_id)
        if run is None:
            raise not_found("trainingRun", f"trainingRuns/{run_id}")
        return run

    # -- create --

    def _model(self, model: training_pb2.ModelSpec) -> dict[str, str]:
        preset = model.preset or hyperparams.DEFAULT_PRESET
        if preset not in PRESETS:
            raise bad_field(
                "training_run.model.preset",
                f"unknown preset {preset!r}; known: {', '.join(PRESETS)}",
            )
        local_path = ""
        if model.local_path:
            local_path = str(self._local_path(model.local_path))
        elif PRESETS[preset].needs_weights:
            raise bad_field(
                "training_run.model.local_path",
                f"preset {preset!r} has no random initialisation; give the directory "
                "(under the server's data dir) holding its *.safetensors and tokenizer.model",
            )
        return {"preset": preset, "local_path": local_path}

    def _local_path(self, given: str) -> Path:
        """A directory inside the data dir: a previous run (`trainingRuns/{uuid}`) or
        a path relative to the data dir. Nothing from a request may point outside it."""
        field = "training_run.model.local_path"
        if given.startswith("trainingRuns/"):
            path = self._supervisor.run_dir(parse_uuid_name(given, "trainingRuns", field))
        else:
            path = (self._data_dir / given).resolve()
        if not path.is_relative_to(self._data_dir):
            raise bad_field(field, "must be inside the server's data dir")
        if not path.is_dir():
            raise bad_field(field, f"{given!r} is not a directory under the data dir")
        return path

    @staticmethod
    def _lora(lora: training_pb2.LoraConfig) -> dict[str, Any]:
        rank, alpha = lora.rank or 8, lora.alpha or 16.0
        if lora.enabled and not 1 <= rank <= 1024:
            raise bad_field("training_run.lora.rank", f"must be in [1, 1024], got {rank}")
        if lora.enabled and not (math.isfinite(alpha) and alpha > 0):
            raise bad_field("training_run.lora.alpha", f"must be a positive number, got {alpha}")
        return {"enabled": lora.enabled, "rank": rank, "alpha": alpha}

    async def CreateTrainingRun(
        self, request: training_pb2.CreateTrainingRunRequest, context: Any
    ) -> training_pb2.TrainingRun:
        if not request.HasField("training_run"):
            raise bad_field("training_run", "is required")
        request_id = check_request_id(request.request_id)
        given = request.training_run
        if not given.dataset:
            raise bad_field("training_run.dataset", "is required, e.g. datasets/dev-v1")
        model = self._model(given.model)
        hp_msg = given.hyperparameters
        hp = hyperparams.resolve(
            {f.name: v for f, v in hp_msg.ListFields() if f.name != "system_instruction"},
            prefix="training_run.hyperparameters",
            defaults=PRESETS[model["preset"]].hyperparameters,
        )
        hp["system_instruction"] = hp_msg.system_instruction
        spec = {"model": model, "hyperparameters": hp, "lora": self._lora(given.lora)}
        bad = [
            FieldViolation(f"training_run.labels[{k}]", "keys and values are at most 256 chars")
            for k, v in given.labels.items()
            if not k or len(k) > 256 or len(v) > 256
        ]
        if bad:
            raise invalid_argument(bad)
        dataset = await self._dataset_service.resolve(given.dataset, "training_run.dataset")
        if dataset.stats.get("train_count", 0) == 0:
            raise failed_precondition(
                f"datasets/{dataset.key} has no train split to train on",
                reason="EMPTY_TRAIN_SPLIT",
                subject=f"datasets/{dataset.key}",
            )
        queued = await asyncio.to_thread(self._runs.count_in_state, QUEUED)
        if queued >= self._max_queued:
            raise ApiError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{queued} runs are already queued (max_queued_runs); wait or cancel some",
                "TOO_MANY_QUEUED_RUNS",
            )
        caller = current_caller()
        try:
            run = await asyncio.to_thread(
                self._runs.create,
                dataset.key,
                spec,
                caller.name if caller else given.created_by or "anonymous",
                dict(given.labels),
                request_id,
            )
        except RunExists as exists:
            run = exists.run  # the same request again: answer as the first time
        self._supervisor.wake()
        return run_to_proto(run)

    # -- read --

    async def GetTrainingRun(
        self, request: training_pb2.GetTrainingRunRequest, context: Any
    ) -> training_pb2.TrainingRun:
        return run_to_proto(await self._get(request.name))

    async def ListTrainingRuns(
        self, request: training_pb2.ListTrainingRunsRequest, context: Any
    ) -> training_pb2.ListTrainingRunsResponse:
        if request.state not in _STATE_NAMES:
            raise bad_field("state", f"unknown state {request.state}")
        size = page_size(request.page_size)
        query = f"runs|{request.state}"
        cursor = decode_token(request.page_token, query)
        rows = await asyncio.to_thread(self._runs.page, size + 1, cursor, request.state or None)
        page = rows[:size]
        return training_pb2.ListTrainingRunsResponse(
            training_runs=[run_to_proto(r) for r in page],
            next_page_token=encode_token(page[-1].seq, query) if len(rows) > size else "",
        )

    # -- cancel / resume --

    async def CancelTrainingRun(
        self, request: training_pb2.CancelTrainingRunRequest, context: Any
    ) -> training_pb2.TrainingRun:
        run = await self._get(request.name)
        if run.state == QUEUED:
            moved = await asyncio.to_thread(
                self._runs.transition,
                run.id,
                CANCELLED,
                "cancelled before it started",
                from_states=(QUEUED,),
            )
            if moved is not None:
                self._supervisor.changed(run.id)
                return run_to_proto(moved)
            run = await self._get(request.name)  # a worker claimed it meanwhile
        if run.state == RUNNING:
            await asyncio.to_thread(self._runs.request_cancel, run.id)
            await self._supervisor.cancel(run.id)
            return run_to_proto(await self._get(request.name))
        raise failed_precondition(
            f"trainingRuns/{run.id} already ended {_STATE_NAMES[run.state]}; nothing to cancel",
            reason="RUN_ALREADY_ENDED",
            subject=f"trainingRuns/{run.id}",
        )

    async def ResumeTrainingRun(
        self, request: training_pb2.ResumeTrainingRunRequest, context: Any
    ) -> training_pb2.TrainingRun:
        run = await self._get(request.name)
        if run.state not in (CANCELLED, FAILED):
            raise failed_precondition(
                f"trainingRuns/{run.id} is {_STATE_NAMES[run.state]}; only CANCELLED or FAILED "
                "runs can be resumed",
                reason="RUN_NOT_RESUMABLE",
                subject=f"trainingRuns/{run.id}",
            )
        await self._dataset_service.resolve(run.dataset_key)  # still there?
        moved = await asyncio.to_thread(
            self._runs.transition,
            run.id,
            QUEUED,
            f"resuming from checkpoint step {run.checkpoint_step}",
            from_states=(CANCELLED, FAILED),
            step=run.checkpoint_step,
            end_time_us=None,
        )
        if moved is None:
            raise failed_precondition(
                f"trainingRuns/{run.id} changed state meanwhile; try again",
                reason="CONCURRENT_CHANGE",
                subject=f"trainingRuns/{run.id}",
            )
        self._supervisor.changed(run.id)
        self._supervisor.wake()
        return run_to_proto(moved)

    # -- watch --

    async def WatchTrainingRun(
        self, request: training_pb2.WatchTrainingRunRequest, context: Any
    ) -> AsyncIterator[training_pb2.TrainingEvent]:
        run = await self._get(request.name)
        if request.since_step < 0 or request.after_sequence < 0:
            raise bad_field(
                "since_step" if request.since_step < 0 else "after_sequence", "must be >= 0"
            )
        after = request.after_sequence
        while True:
            seen = self._supervisor.version(run.id)
            events = await asyncio.to_thread(self._runs.events, run.seq, after)
            for event in events:
                after = event.sequence
                # Events before the first step (state changes, the initial eval) are
                # context every watcher wants, so since_step never hides them.
                if event.step >= request.since_step or event.step == 0:
                    yield event_to_proto(event)
            if len(events) == EVENT_PAGE:
                continue
            current = await asyncio.to_thread(self._runs.get, run.id)
            if current is None or (current.state in TERMINAL and current.last_sequence <= after):
                return  # ended (or deleted) and everything was sent
            if not events:
                await self._supervisor.wait_for_change(run.id, seen, WATCH_POLL_S)

    # -- inference --

    async def _generate(
        self, run: StoredRun, prompts: list[str], max_new_tokens: int, temperature: float, seed: int
    ) -> tuple[list[str], int]:
        if run.checkpoint_step == 0:
            raise failed_precondition(
                f"trainingRuns/{run.id} has no checkpoint yet",
                reason="NO_CHECKPOINT",
                subject=f"trainingRuns/{run.id}",
            )
        system = run.spec["hyperparameters"]["system_instruction"]
        request = {
            "prompts": [prompt_turns(p, system) for p in prompts],
            "max_new_tokens": max_new_tokens,
            "temperature": temperature,
            "seed": seed,
        }
        try:
            return await self._supervisor.generate(run.id, request, GENERATE_TIMEOUT_S)
        except GenerateError as exc:
            raise failed_precondition(
                f"generation failed for trainingRuns/{run.id}: {exc}",
                reason="GENERATION_FAILED",
                subject=f"trainingRuns/{run.id}",
            ) from None

    @staticmethod
    def _new_tokens(value: int, field: str) -> int:
        if not 0 <= value <= MAX_NEW_TOKENS:
            raise bad_field(field, f"must be in [0, {MAX_NEW_TOKENS}], got {value}")
        return value or DEFAULT_NEW_TOKENS

    async def Generate(
        self, request: training_pb2.GenerateRequest, context: Any
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
        max_new = self._new_tokens(request.max_new_tokens, "max_new_tokens")
        run = await self._get(request.name)
        texts, step = await self._generate(run, prompts, max_new, request.temperature, request.seed)
        return training_pb2.GenerateResponse(
            generations=[
                training_pb2.Generation(prompt=p, text=t, answer=scoring.extract_answer(t))
                for p, t in zip(prompts, texts, strict=True)
            ],
            step=step,
        )

    async def EvaluateRun(
        self, request: training_pb2.EvaluateRunRequest, context: Any
    ) -> training_pb2.Evaluation:
        split = split_filter(request.split) if request.split else EVAL
        if not 0 <= request.max_examples <= MAX_EVAL_EXAMPLES:
            raise bad_field("max_examples", f"must be in [0, {MAX_EVAL_EXAMPLES:,}]")
        max_new = self._new_tokens(request.max_new_tokens, "max_new_tokens")
        run = await self._get(request.name)
        dataset = await self._dataset_service.resolve(run.dataset_key)
        examples = await asyncio.to_thread(
            self._examples, dataset.seq, split, request.max_examples or MAX_EVAL_EXAMPLES
        )
        if not examples:
            raise failed_precondition(
                f"datasets/{dataset.key} has no examples in that split",
                reason="EMPTY_SPLIT",
                subject=f"datasets/{dataset.key}",
            )
        texts, step = await self._generate(run, [e.prompt for e in examples], max_new, 0.0, 0)
        result = scoring.score(examples, texts)
        evaluation = training_pb2.Evaluation(
            split=dataset_pb2.DatasetSplit.ValueType(split or dataset_pb2.DATASET_SPLIT_ALL),
            step=step,
            create_time=_timestamp(now_us()),
        )
        json_format.ParseDict(result, evaluation)
        stored = json_format.MessageToDict(evaluation, preserving_proto_field_name=True)
        await asyncio.to_thread(self._runs.add_evaluation, run.id, stored)
        return evaluation

    def _examples(self, dataset_seq: int, split: int | None, limit: int) -> list[scoring.Example]:
        rows = self._datasets.rows(dataset_seq, split, meta=True)
        return [
            scoring.Example(prompt, answer, str(meta.get("category", "")))
            for _id, _version, prompt, answer, _steps, meta, _time in itertools.islice(rows, limit)
        ]
