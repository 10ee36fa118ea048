"""tunixrt.v1.TrainingService: runs, their event streams, Generate and EvaluateRun.

RPC glue: the run spec is validated in runspec.py, workers are run by the
supervisor, and Generate/EvaluateRun live in inference.py.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from google.protobuf import empty_pb2

from tunixrt.v1 import training_pb2, training_pb2_grpc

from ..core.errors import (
    ApiError,
    bad_field,
    failed_precondition,
    not_found,
)
from ..core.filters import parse_run_filter
from ..core.names import check_request_id, parse_uuid_name
from ..core.pagination import paginate
from ..core.run_state import TERMINAL, RunState
from ..core.runspec import RunSpec
from ..storage.datasets import DatasetStore
from ..storage.runs import RunExists, RunStore, StoredRun
from ..training.inference_pool import InferencePool
from ..training.supervisor import Supervisor
from . import dry_run, grpo_budget, run_requests
from .auth import current_caller
from .convert import (
    event_to_proto,
    resolve_dataset,
    run_to_proto,
    state_name,
)
from .inference import Inference

# A watcher re-reads the log at least this often even without a wake-up.
WATCH_POLL_S = 1.0
EVENT_PAGE = 1_000
QUEUED, RUNNING, FAILED, CANCELLED = (
    RunState.QUEUED,
    RunState.RUNNING,
    RunState.FAILED,
    RunState.CANCELLED,
)


class TrainingService(training_pb2_grpc.TrainingServiceServicer):
    def __init__(
        self,
        runs: RunStore,
        datasets: DatasetStore,
        supervisor: Supervisor,
        pool: InferencePool,
        data_dir: Path,
        max_queued: int = 100,
        max_learning_rate: float = 1.0,
    ) -> None:
        self._runs = runs
        self._datasets = datasets
        self._supervisor = supervisor
        self._pool = pool
        self._data_dir = data_dir.resolve()
        self._inference = Inference(runs, datasets, pool, self._find, self._data_dir)
        self._max_queued = max_queued
        self._max_learning_rate = max_learning_rate
        self._local_path = run_requests.local_paths(self._data_dir, supervisor.run_dir)

    async def _find(self, name: str) -> tuple[StoredRun, Path]:
        run = await self._get(name)
        return run, self._supervisor.run_dir(run.id)

    async def _get(self, name: str, field: str = "name") -> StoredRun:
        run_id = parse_uuid_name(name, "trainingRuns", field)
        run = await asyncio.to_thread(self._runs.get, run_id)
        if run is None:
            raise not_found("trainingRun", f"trainingRuns/{run_id}")
        return run

    # -- create --

    async def CreateTrainingRun(
        self, request: training_pb2.CreateTrainingRunRequest, context: Any
    ) -> training_pb2.TrainingRun:
        if not request.HasField("training_run"):
            raise bad_field("training_run", "is required")
        request_id = check_request_id(request.request_id)
        given = request.training_run
        if not given.dataset:
            raise bad_field("training_run.dataset", "is required, e.g. datasets/dev-v1")
        # Off the event loop: a local_path is checked on disk (hf_layout.inspect).
        spec = await asyncio.to_thread(
            RunSpec.from_request, given, self._local_path, self._max_learning_rate
        )
        run_requests.check_labels(given.labels)
        dataset = await resolve_dataset(self._datasets, given.dataset, "training_run.dataset")
        train_count = int(dataset.stats.get("train_count", 0))
        if train_count == 0:
            raise failed_precondition(
                f"datasets/{dataset.key} has no train split to train on",
                reason="EMPTY_TRAIN_SPLIT",
                subject=f"datasets/{dataset.key}",
            )
        spec = spec.with_epochs_resolved(
            train_count, steps_given=given.hyperparameters.max_steps != 0
        )
        spec = await asyncio.to_thread(grpo_budget.settle, spec, self._datasets, dataset.key)

        queued = (await asyncio.to_thread(self._runs.count_by_state)).get(QUEUED, 0)
        if queued >= self._max_queued:
            raise ApiError(
                "RESOURCE_EXHAUSTED",
                f"{queued} runs are already queued (max_queued_runs); wait or cancel some",
                "TOO_MANY_QUEUED_RUNS",
            )
        caller = current_caller()
        created_by = caller.name if caller else given.created_by or "anonymous"
        if request.validate_only:
            spec, metrics = await asyncio.to_thread(
                dry_run.prepare, spec, self._datasets, dataset.key
            )
            return run_requests.would_be(dataset.key, spec, created_by, dict(given.labels), metrics)
        try:
            run = await asyncio.to_thread(
                self._runs.create,
                dataset.key,
                spec,
                created_by,
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
        if request.state and int(request.state) not in {s.value for s in RunState}:
            raise bad_field("state", f"unknown state {request.state}")
        conditions = parse_run_filter(request.filter)
        page, token = await paginate(
            lambda limit, cursor: self._runs.page(limit, cursor, request.state or None, conditions),
            lambda run: run.seq,
            requested_size=request.page_size,
            page_token=request.page_token,
            query=f"runs|{request.state}|{request.filter}",
        )
        return training_pb2.ListTrainingRunsResponse(
            training_runs=[run_to_proto(r) for r in page], next_page_token=token
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
            f"trainingRuns/{run.id} already ended {state_name(run.state)}; nothing to cancel",
            reason="RUN_ALREADY_ENDED",
            subject=f"trainingRuns/{run.id}",
        )

    async def ResumeTrainingRun(
        self, request: training_pb2.ResumeTrainingRunRequest, context: Any
    ) -> training_pb2.TrainingRun:
        run = await self._get(request.name)
        if run.state not in (CANCELLED, FAILED):
            raise failed_precondition(
                f"trainingRuns/{run.id} is {state_name(run.state)}; only CANCELLED or FAILED "
                "runs can be resumed",
                reason="RUN_NOT_RESUMABLE",
                subject=f"trainingRuns/{run.id}",
            )
        await resolve_dataset(self._datasets, run.dataset_key)  # still there?
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

    # -- delete --

    async def DeleteTrainingRun(
        self, request: training_pb2.DeleteTrainingRunRequest, context: Any
    ) -> empty_pb2.Empty:
        run = await self._get(request.name)
        subject = f"trainingRuns/{run.id}"
        if run.state not in TERMINAL:
            raise failed_precondition(
                f"{subject} is {state_name(run.state)}; cancel it first",
                reason="RUN_NOT_ENDED",
                subject=subject,
            )
        run_dir = self._supervisor.run_dir(run.id)
        children = await asyncio.to_thread(self._runs.started_from, str(run_dir))
        if children:
            raise failed_precondition(
                f"{subject} is the starting point of "
                f"{', '.join('trainingRuns/' + c for c in children[:5])}; delete those first",
                reason="RUN_IN_USE",
                subject=subject,
            )
        await self._pool.release(run.id)
        if not await asyncio.to_thread(self._runs.delete, run.id):
            raise not_found("trainingRun", subject)
        await asyncio.to_thread(shutil.rmtree, run_dir, True)
        self._supervisor.changed(run.id)  # watchers of a deleted run end
        return empty_pb2.Empty()

    # -- inference --

    async def Generate(
        self, request: training_pb2.GenerateRequest, context: Any
    ) -> training_pb2.GenerateResponse:
        return await self._inference.generate(request)

    async def EvaluateRun(
        self, request: training_pb2.EvaluateRunRequest, context: Any
    ) -> training_pb2.Evaluation:
        return await self._inference.evaluate(request)

    async def ExportModel(
        self, request: training_pb2.ExportModelRequest, context: Any
    ) -> training_pb2.ExportModelResponse:
        return await self._inference.export_model(request)
