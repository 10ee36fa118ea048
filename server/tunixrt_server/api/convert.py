"""Between tunixrt.v1 messages and what storage holds: resources, timestamps, enum tables.

Every servicer converts through here, so a message is built one way wherever
it is returned, and no servicer needs another servicer. Nothing here runs SQL:
`resolve_dataset` asks a store.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

import orjson
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from tunixrt.v1 import dataset_pb2, export_pb2, trace_pb2, training_pb2

from ..core.errors import bad_field, not_found
from ..core.grpo_spec import GRPO, LOSSES, Grpo
from ..core.names import parse_dataset_name
from ..core.runspec import BYTES, SUBWORD, Model
from ..core.validation import NewTrace

if TYPE_CHECKING:
    from ..storage.datasets import DatasetStore, StoredDataset
    from ..storage.run_events import Event
    from ..storage.runs import StoredRun
    from ..storage.traces import StoredTrace


# Stored split numbers are the DatasetSplit values; ALL/UNSPECIFIED select both.
SPLITS: dict[int, int | None] = {
    dataset_pb2.DATASET_SPLIT_UNSPECIFIED: None,
    dataset_pb2.DATASET_SPLIT_ALL: None,
    dataset_pb2.DATASET_SPLIT_TRAIN: dataset_pb2.DATASET_SPLIT_TRAIN,
    dataset_pb2.DATASET_SPLIT_EVAL: dataset_pb2.DATASET_SPLIT_EVAL,
}
STRATEGIES = {
    dataset_pb2.SELECTION_STRATEGY_UNSPECIFIED: "LATEST",
    dataset_pb2.SELECTION_STRATEGY_LATEST: "LATEST",
    dataset_pb2.SELECTION_STRATEGY_RANDOM: "RANDOM",
    dataset_pb2.SELECTION_STRATEGY_STRATIFIED: "STRATIFIED",
}
EXPORT_FORMATS = {
    export_pb2.EXPORT_FORMAT_UNSPECIFIED: "trace",
    export_pb2.EXPORT_FORMAT_TRACE: "trace",
    export_pb2.EXPORT_FORMAT_TUNIX_SFT: "tunix_sft",
    export_pb2.EXPORT_FORMAT_MESSAGES: "messages",
    export_pb2.EXPORT_FORMAT_PROMPT_COMPLETION: "prompt_completion",
    export_pb2.EXPORT_FORMAT_TUNIX_RT_TRACE: "tunix_rt_trace",
    export_pb2.EXPORT_FORMAT_TUNIX_RT_SFT: "tunix_rt_sft",
    export_pb2.EXPORT_FORMAT_TRAINING_EXAMPLE: "training_example",
}


def split_filter(value: int, field: str = "split") -> int | None:
    """A DatasetSplit from a request as the stored split number (None: both)."""
    if value not in SPLITS:
        raise bad_field(field, f"unknown split {value}")
    return SPLITS[value]


def state_name(state: int) -> str:
    return training_pb2.TrainingRunState.Name(state)  # type: ignore[arg-type]


def timestamp(micros: int | None) -> timestamp_pb2.Timestamp | None:
    if micros is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromMicroseconds(micros)
    return stamp


async def resolve_dataset(store: DatasetStore, name: str, field: str = "name") -> StoredDataset:
    """`datasets/{key}` (or a bare key) to the stored dataset, or NOT_FOUND."""
    key = parse_dataset_name(name, field)
    found = await asyncio.to_thread(store.get, key)
    if found is None:
        raise not_found("dataset", f"datasets/{key}")
    return found


# ---- resources -------------------------------------------------------------------


def trace_to_proto(stored: StoredTrace) -> trace_pb2.Trace:
    """A trace as stored; one read in the basic view has no prompt, answer or steps."""
    meta = struct_pb2.Struct()
    meta.update(stored.meta)
    return trace_pb2.Trace(
        name=f"traces/{stored.id}",
        trace_version=stored.trace_version,
        prompt=stored.prompt,
        final_answer=stored.final_answer,
        steps=[trace_pb2.TraceStep(**s) for s in orjson.loads(stored.steps_json)],
        meta=meta,
        create_time=timestamp(stored.create_time_us),
        step_count=stored.step_count,
    )


def new_trace_to_proto(
    trace: NewTrace, trace_id: str = "", create_time_us: int | None = None, *, full: bool = True
) -> trace_pb2.Trace:
    """A trace not read from storage (a generated one): named once it is stored."""
    meta = struct_pb2.Struct()
    meta.update(trace.meta)
    msg = trace_pb2.Trace(
        name=f"traces/{trace_id}" if trace_id else "",
        trace_version=trace.trace_version,
        meta=meta,
        create_time=timestamp(create_time_us),
        step_count=len(trace.steps),
    )
    if full:
        msg.prompt, msg.final_answer = trace.prompt, trace.final_answer
        msg.steps.extend(trace_pb2.TraceStep(**s) for s in trace.steps)
    return msg


def full_view(view: int) -> bool:
    """A TraceView from a request: FULL unless BASIC was asked for."""
    if view not in trace_pb2.TraceView.values():
        raise bad_field("view", f"unknown view {view}")
    return view != trace_pb2.TRACE_VIEW_BASIC


def dataset_item(trace_id: str, split: int) -> dataset_pb2.DatasetItem:
    return dataset_pb2.DatasetItem(
        trace_id=trace_id, split=dataset_pb2.DatasetSplit.ValueType(split)
    )


def dataset_to_proto(
    ds: StoredDataset, items: list[tuple[int, str, int]] | None = None
) -> dataset_pb2.Dataset:
    spec = ds.spec
    return dataset_pb2.Dataset(
        name=f"datasets/{ds.key}",
        dataset_key=ds.key,
        dataset_name=spec["dataset_name"],
        version=spec["version"],
        build_id=ds.build_id,
        filter=spec["filter"],
        limit=spec["limit"],
        strategy=dataset_pb2.SelectionStrategy.Value(f"SELECTION_STRATEGY_{spec['strategy']}"),
        seed=spec["seed"],
        stratify_by=spec["stratify_by"],
        eval_fraction=spec["eval_fraction"],
        provenance=dataset_pb2.Provenance(**spec.get("provenance", {})),
        stats=dataset_pb2.DatasetStats(**ds.stats),
        create_time=timestamp(ds.create_time_us),
        items=[dataset_item(t, s) for _, t, s in items or ()],
    )


_TOKENIZER_KINDS = {
    BYTES: training_pb2.TOKENIZER_KIND_BYTES,
    SUBWORD: training_pb2.TOKENIZER_KIND_SUBWORD,
}


def model_spec(model: Model) -> training_pb2.ModelSpec:
    """The model as it trains: a from-scratch run shows its tokenizer, resolved."""
    msg = training_pb2.ModelSpec(preset=model.preset, local_path=model.local_path)
    if model.tokenizer:
        msg.tokenizer.kind = _TOKENIZER_KINDS[model.tokenizer]
        msg.tokenizer.vocab_size = model.vocab_size
    return msg


def grpo_config(grpo: Grpo) -> training_pb2.GrpoConfig:
    loss = {v: k for k, v in LOSSES.items() if k != training_pb2.GRPO_LOSS_UNSPECIFIED}
    return training_pb2.GrpoConfig(
        num_generations=grpo.num_generations,
        temperature=grpo.temperature,
        max_new_tokens=grpo.max_new_tokens,
        beta=grpo.beta,
        epsilon=grpo.epsilon,
        num_iterations=grpo.num_iterations,
        loss=loss[grpo.loss],
        rewards=[training_pb2.RewardWeight(name=n, weight=w) for n, w in grpo.rewards],
        rollout_engine=grpo.rollout_engine,
    )


def run_to_proto(run: StoredRun) -> training_pb2.TrainingRun:
    spec = run.spec
    msg = training_pb2.TrainingRun(
        name=f"trainingRuns/{run.id}",
        dataset=f"datasets/{run.dataset_key}",
        model=model_spec(spec.model),
        hyperparameters=training_pb2.Hyperparameters(**dataclasses.asdict(spec.hyperparameters)),
        lora=training_pb2.LoraConfig(**dataclasses.asdict(spec.lora)),
        mesh=training_pb2.MeshConfig(**dataclasses.asdict(spec.mesh)),
        state=training_pb2.TrainingRunState.ValueType(run.state),
        state_message=run.state_message,
        created_by=run.created_by,
        labels=run.labels,
        create_time=timestamp(run.create_time_us),
        start_time=timestamp(run.start_time_us),
        end_time=timestamp(run.end_time_us),
        metrics=training_pb2.RunMetrics(**run.metrics),
        checkpoint_step=run.checkpoint_step,
        best_checkpoint_step=run.best_checkpoint_step,
    )
    if spec.method == GRPO:
        msg.method = training_pb2.TRAINING_METHOD_GRPO
        msg.grpo.CopyFrom(grpo_config(spec.grpo))
    else:
        msg.method = training_pb2.TRAINING_METHOD_SFT
    for evaluation in run.evaluations:
        json_format.ParseDict(evaluation, msg.evaluations.add())
    return msg


def event_to_proto(event: Event) -> training_pb2.TrainingEvent:
    msg = training_pb2.TrainingEvent(
        sequence=event.sequence, step=event.step, time=timestamp(event.time_us)
    )
    getattr(msg, event.kind).CopyFrom(type(getattr(msg, event.kind))(**event.payload))
    return msg
