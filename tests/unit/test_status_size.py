"""What a status may carry, and which request strings it refuses."""

from __future__ import annotations

from tunixrt.v1 import trace_pb2, training_pb2
from tunixrt_server.api.status import to_status
from tunixrt_server.core.errors import FieldViolation, clip, invalid_argument
from tunixrt_server.core.nul_check import json_paths, message_paths


def test_statuses_stay_under_the_trailer_limit_whatever_they_quote() -> None:
    huge = [FieldViolation("f" * 5000 + "\U0001f600" * 900, "\x00" * 9000) for _ in range(50)]
    status = to_status(invalid_argument(huge))
    # grpc-message percent-encodes (x3 at worst); the details are base64 already.
    size = sum(len(k) + len(v) for k, v in status.trailing_metadata)
    size += 3 * len(status.details.encode("utf-8", "surrogatepass"))
    assert size < 8 * 1024
    assert clip("short", 10) == "short" and clip("é" * 100, 40).endswith("(100 chars)")


def test_nul_paths_name_fields_the_way_requests_spell_them() -> None:
    run = training_pb2.CreateTrainingRunRequest(
        training_run=training_pb2.TrainingRun(dataset="ok", labels={"team": "a\x00"})
    )
    assert message_paths(run) == ["training_run.labels[team]"]
    trace = trace_pb2.Trace(prompt="p", steps=[trace_pb2.TraceStep(content="c\x00")])
    trace.meta.update({"a": {"b": ["x", "y\x00"]}})
    assert message_paths(trace_pb2.CreateTraceRequest(trace=trace)) == [
        "trace.steps[0].content",
        "trace.meta.a.b[1]",
    ]
    assert json_paths({"k\x00": 1, "fine": "\\u0000"}, "meta") == ["meta.k\\u0000"]
