"""Plain-dict views of tunixrt.v1 messages, in the tunix-rt trace JSON shape."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2

from .v1 import dataset_pb2, export_pb2, trace_pb2, training_pb2


def whole_numbers_as_int(value: Any) -> Any:
    # Struct carries numbers as doubles; give back ints where the JSON had them.
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers_as_int(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers_as_int(v) for v in value]
    return value


def trace_to_dict(trace: trace_pb2.Trace) -> dict[str, Any]:
    """A stored trace as tunix-rt trace JSON, plus `id` and `create_time`."""
    return {
        "id": trace.name.removeprefix("traces/"),
        "trace_version": trace.trace_version,
        "prompt": trace.prompt,
        "final_answer": trace.final_answer,
        "steps": [{"i": s.i, "type": s.type, "content": s.content} for s in trace.steps],
        "meta": whole_numbers_as_int(json_format.MessageToDict(trace.meta)),
        "create_time": trace.create_time.ToJsonString(),
    }


def trace_from_dict(doc: dict[str, Any]) -> trace_pb2.Trace:
    """Build a Trace from tunix-rt trace JSON (the server validates it)."""
    meta = struct_pb2.Struct()
    meta.update(doc.get("meta") or {})
    return trace_pb2.Trace(
        trace_version=doc.get("trace_version", ""),
        prompt=doc.get("prompt", ""),
        final_answer=doc.get("final_answer", ""),
        steps=[
            trace_pb2.TraceStep(i=s["i"], type=s["type"], content=s["content"])
            for s in doc.get("steps", [])
        ],
        meta=meta,
    )


def run_state(name: str) -> training_pb2.TrainingRunState.ValueType:
    return training_pb2.TrainingRunState.Value(f"TRAINING_RUN_STATE_{name.upper()}")


def training_method(name: str) -> training_pb2.TrainingMethod.ValueType:
    """ "sft" or "grpo"."""
    return training_pb2.TrainingMethod.Value(f"TRAINING_METHOD_{name.upper()}")


def export_format(name: str) -> export_pb2.ExportFormat.ValueType:
    return export_pb2.ExportFormat.Value(f"EXPORT_FORMAT_{name.upper()}")


def dataset_split(name: str) -> dataset_pb2.DatasetSplit.ValueType:
    return dataset_pb2.DatasetSplit.Value(f"DATASET_SPLIT_{name.upper()}")


def trace_view(name: str) -> trace_pb2.TraceView.ValueType:
    return trace_pb2.TraceView.Value(f"TRACE_VIEW_{name.upper()}")
