"""CreateTrainingRun's checks beyond the spec itself (runspec.py): where a run may
start from, its labels, and the answer to a validate_only create."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tunixrt.v1 import training_pb2

from ..core.errors import FieldViolation, bad_field, invalid_argument
from ..core.names import inside_data_dir, parse_uuid_name
from ..core.run_state import RunState
from ..core.runspec import RunSpec
from ..storage.runs import StoredRun
from ..storage.traces import now_us
from ..training import hf_layout
from ..training.checkpoints import MODEL_FILE
from .convert import run_to_proto

MAX_LABEL_CHARS = 256


def local_paths(data_dir: Path, run_dir: Callable[[str], Path]) -> Callable[[str], str]:
    """The check of model.local_path: a directory inside the data dir, a previous run
    (`trainingRuns/{uuid}`) or a model directory (training/hf_layout.py)."""

    def resolve(given: str) -> str:
        field = "training_run.model.local_path"
        if given.startswith("trainingRuns/"):
            path = run_dir(parse_uuid_name(given, "trainingRuns", field))
        else:
            path = inside_data_dir(data_dir, given, field)
        if not path.is_dir():
            raise bad_field(field, f"{given!r} is not a directory under the data dir")
        if not (path / MODEL_FILE).exists():  # not a run: a model in the published layout
            try:
                hf_layout.inspect(path)
            except ValueError as exc:
                raise bad_field(field, str(exc)) from None
        return str(path)

    return resolve


def check_labels(labels: Mapping[str, str]) -> None:
    bad = [
        FieldViolation(
            f"training_run.labels[{k}]", f"keys and values are at most {MAX_LABEL_CHARS} chars"
        )
        for k, v in labels.items()
        if not k or len(k) > MAX_LABEL_CHARS or len(v) > MAX_LABEL_CHARS
    ]
    if bad:
        raise invalid_argument(bad)


def would_be(
    dataset_key: str,
    spec: RunSpec,
    created_by: str,
    labels: dict[str, str],
    metrics: dict[str, Any],
) -> training_pb2.TrainingRun:
    """A validate_only create's answer: the run as it would be queued, unnamed."""
    run = StoredRun(
        seq=0,
        id="",
        dataset_key=dataset_key,
        spec=spec,
        state=RunState.QUEUED,
        state_message="validate_only: checked, nothing stored or queued",
        created_by=created_by,
        labels=labels,
        create_time_us=now_us(),
        start_time_us=None,
        end_time_us=None,
        metrics=metrics,
        checkpoint_step=0,
        best_checkpoint_step=0,
        evaluations=[],
        attempt=0,
        heartbeat_us=None,
        last_sequence=0,
        cancel_requested=False,
        request_id=None,
    )
    msg = run_to_proto(run)
    msg.name = ""
    return msg
