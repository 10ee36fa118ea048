"""Export row formats. Pure functions of a trace; the training worker uses the same ones.

tunix_sft is byte-for-byte the tunix-rt rendering (docs/contract.md):

    <start_of_turn>user\\n{prompt}<end_of_turn>\\n<start_of_turn>model\\n
    Reasoning:\\n1. {step}\\n2. {step}\\nAnswer: {final_answer}<end_of_turn>

(one string, no BOS, no trailing newline; with no steps the model turn is
`Answer: {final_answer}`; a system instruction becomes `{system}\\n\\n{prompt}`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson

START, END = "<start_of_turn>", "<end_of_turn>"


def user_text(prompt: str, system: str = "") -> str:
    return f"{system}\n\n{prompt}" if system else prompt


def model_text(steps: Sequence[dict[str, Any]], final_answer: str) -> str:
    if not steps:
        return f"Answer: {final_answer}"
    lines = "\n".join([f"{n}. {step['content']}" for n, step in enumerate(steps, 1)])
    return f"Reasoning:\n{lines}\nAnswer: {final_answer}"


def prompt_turns(prompt: str, system: str = "") -> str:
    """The Gemma prompt up to where the model starts writing."""
    return f"{START}user\n{user_text(prompt, system)}{END}\n{START}model\n"


def completion_turn(steps: Sequence[dict[str, Any]], final_answer: str) -> str:
    return f"{model_text(steps, final_answer)}{END}"


def tunix_sft_text(
    prompt: str, steps: Sequence[dict[str, Any]], final_answer: str, system: str = ""
) -> str:
    # prompt_turns + completion_turn in one f-string: this runs once per exported row.
    return (
        f"{START}user\n{user_text(prompt, system)}{END}\n{START}model\n"
        f"{model_text(steps, final_answer)}{END}"
    )


class ExportRow(NamedTuple):
    """A trace as export reads it: straight from storage, steps still JSON text."""

    id: str
    trace_version: str
    prompt: str
    final_answer: str
    steps_json: str
    meta: Any  # None when the format does not show it (never decoded)
    create_time_us: int


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def rfc3339(micros: int) -> str:
    return (_EPOCH + timedelta(microseconds=micros)).isoformat().replace("+00:00", "Z")


def _tunix_rt_metadata(row: ExportRow, **extra: str) -> dict[str, Any]:
    # As tunix-rt writes it: Python's isoformat of an aware UTC time, then the meta.
    created = (_EPOCH + timedelta(microseconds=row.create_time_us)).isoformat()
    return {"created_at": created, "trace_version": row.trace_version, **extra, **row.meta}


def _trace_row(row: ExportRow, system: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "trace_version": row.trace_version,
        "prompt": row.prompt,
        "final_answer": row.final_answer,
        "steps": orjson.loads(row.steps_json),
        "meta": row.meta,
        "create_time": rfc3339(row.create_time_us),
    }


def _sft_row(row: ExportRow, system: str) -> dict[str, Any]:
    steps = orjson.loads(row.steps_json)
    return {"id": row.id, "text": tunix_sft_text(row.prompt, steps, row.final_answer, system)}


def _messages_row(row: ExportRow, system: str) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [
        {"role": "user", "content": row.prompt},
        {
            "role": "assistant",
            "content": model_text(orjson.loads(row.steps_json), row.final_answer),
        },
    ]
    return {"id": row.id, "messages": messages}


def _prompt_completion_row(row: ExportRow, system: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "prompt": prompt_turns(row.prompt, system),
        "completion": completion_turn(orjson.loads(row.steps_json), row.final_answer),
    }


def _tunix_rt_trace_row(row: ExportRow, system: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "prompts": row.prompt,
        "trace_steps": [step["content"] for step in orjson.loads(row.steps_json)],
        "final_answer": row.final_answer,
        "metadata": _tunix_rt_metadata(row),
    }


def _tunix_rt_sft_row(row: ExportRow, system: str) -> dict[str, Any]:
    steps = orjson.loads(row.steps_json)
    return {
        "id": row.id,
        "prompts": tunix_sft_text(row.prompt, steps, row.final_answer, system),
        "final_answer": row.final_answer,
        "metadata": _tunix_rt_metadata(row, format="tunix_sft"),
    }


# tunix-rt's TrainingExample: the instruction it appends, and a namespace that makes
# the row id a function of the trace (tunix-rt draws a random one; an export here is
# byte-identical every time, so its checksum and resume hold).
TRAINING_EXAMPLE_INSTRUCTION = "\n\nPlease show your reasoning steps."
_TRAINING_EXAMPLE_IDS = uuid.UUID("0b5e8a52-3c1d-4a8e-9f3e-6f1f2d7c9a10")


def _training_example_row(row: ExportRow, system: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid5(_TRAINING_EXAMPLE_IDS, row.id)),
        "prompt": user_text(row.prompt, system) + TRAINING_EXAMPLE_INSTRUCTION,
        "response": model_text(orjson.loads(row.steps_json), row.final_answer),
        "metadata": {"source_trace_id": row.id, **_tunix_rt_metadata(row)},
    }


FORMATS: dict[str, Callable[[ExportRow, str], dict[str, Any]]] = {
    "trace": _trace_row,
    "tunix_sft": _sft_row,
    "messages": _messages_row,
    "prompt_completion": _prompt_completion_row,
    "tunix_rt_trace": _tunix_rt_trace_row,
    "tunix_rt_sft": _tunix_rt_sft_row,
    "training_example": _training_example_row,
}
# Only these formats show meta; the others skip decoding it.
NEEDS_META = {"trace", "tunix_rt_trace", "tunix_rt_sft", "training_example"}


def render_lines(fmt: str, rows: Sequence[ExportRow], system: str = "") -> list[bytes]:
    render, dumps = FORMATS[fmt], orjson.dumps
    return [dumps(render(row, system)) + b"\n" for row in rows]
