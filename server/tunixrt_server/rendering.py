"""Export row formats. Pure functions of a trace; the training worker uses the same ones.

tunix_sft is byte-for-byte the tunix-rt rendering:

    <start_of_turn>user\\n{prompt}<end_of_turn>\\n<start_of_turn>model\\n
    Reasoning:\\n1. {step}\\n2. {step}\\nAnswer: {final_answer}<end_of_turn>

(one string, no BOS, no trailing newline; with no steps the model turn is
`Answer: {final_answer}`; a system instruction becomes `{system}\\n\\n{prompt}`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

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


# An export row is (id, trace_version, prompt, final_answer, steps_json, meta,
# create_time_us) straight from storage: no per-row objects on the hot path.
Row = tuple[str, str, str, str, str, Any, int]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def rfc3339(micros: int) -> str:
    return (_EPOCH + timedelta(microseconds=micros)).isoformat().replace("+00:00", "Z")


def _trace_row(row: Row, system: str) -> dict[str, Any]:
    trace_id, version, prompt, answer, steps_json, meta, create_us = row
    return {
        "id": trace_id,
        "trace_version": version,
        "prompt": prompt,
        "final_answer": answer,
        "steps": orjson.loads(steps_json),
        "meta": meta,
        "create_time": rfc3339(create_us),
    }


def _sft_row(row: Row, system: str) -> dict[str, Any]:
    return {"id": row[0], "text": tunix_sft_text(row[2], orjson.loads(row[4]), row[3], system)}


def _messages_row(row: Row, system: str) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [
        {"role": "user", "content": row[2]},
        {"role": "assistant", "content": model_text(orjson.loads(row[4]), row[3])},
    ]
    return {"id": row[0], "messages": messages}


def _prompt_completion_row(row: Row, system: str) -> dict[str, Any]:
    return {
        "id": row[0],
        "prompt": prompt_turns(row[2], system),
        "completion": completion_turn(orjson.loads(row[4]), row[3]),
    }


FORMATS: dict[str, Callable[[Row, str], dict[str, Any]]] = {
    "trace": _trace_row,
    "tunix_sft": _sft_row,
    "messages": _messages_row,
    "prompt_completion": _prompt_completion_row,
}
# Only the trace format shows meta; the others skip decoding it.
NEEDS_META = {"trace"}


def render_lines(fmt: str, rows: Sequence[Row], system: str = "") -> list[bytes]:
    render, dumps = FORMATS[fmt], orjson.dumps
    return [dumps(render(row, system)) + b"\n" for row in rows]
