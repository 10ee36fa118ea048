"""Export row formats. Pure functions of a trace; the training worker uses the same ones.

tunix_sft is byte-for-byte the tunix-rt rendering:

    <start_of_turn>user\\n{prompt}<end_of_turn>\\n<start_of_turn>model\\n
    Reasoning:\\n1. {step}\\n2. {step}\\nAnswer: {final_answer}<end_of_turn>

(one string, no BOS, no trailing newline; with no steps the model turn is
`Answer: {final_answer}`; a system instruction becomes `{system}\\n\\n{prompt}`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

START, END = "<start_of_turn>", "<end_of_turn>"


@dataclass(frozen=True, slots=True)
class TraceDoc:
    id: str
    trace_version: str
    prompt: str
    final_answer: str
    steps: Sequence[dict[str, Any]]
    meta: dict[str, Any]
    create_time: str


def user_text(prompt: str, system: str = "") -> str:
    return f"{system}\n\n{prompt}" if system else prompt


def model_text(steps: Sequence[dict[str, Any]], final_answer: str) -> str:
    if not steps:
        return f"Answer: {final_answer}"
    lines = "\n".join(f"{n}. {step['content']}" for n, step in enumerate(steps, 1))
    return f"Reasoning:\n{lines}\nAnswer: {final_answer}"


def prompt_turns(prompt: str, system: str = "") -> str:
    """The Gemma prompt up to where the model starts writing."""
    return f"{START}user\n{user_text(prompt, system)}{END}\n{START}model\n"


def completion_turn(steps: Sequence[dict[str, Any]], final_answer: str) -> str:
    return f"{model_text(steps, final_answer)}{END}"


def tunix_sft_text(doc: TraceDoc, system: str = "") -> str:
    return prompt_turns(doc.prompt, system) + completion_turn(doc.steps, doc.final_answer)


def extract_answer(text: str) -> str:
    """The text after the last "Answer:", up to the end of the turn, trimmed."""
    if "Answer:" not in text:
        return ""
    return text.rsplit("Answer:", 1)[1].split(END, 1)[0].strip()


def _trace_row(doc: TraceDoc, system: str) -> dict[str, Any]:
    return {
        "id": doc.id,
        "trace_version": doc.trace_version,
        "prompt": doc.prompt,
        "final_answer": doc.final_answer,
        "steps": doc.steps,
        "meta": doc.meta,
        "create_time": doc.create_time,
    }


def _sft_row(doc: TraceDoc, system: str) -> dict[str, Any]:
    return {"id": doc.id, "text": tunix_sft_text(doc, system)}


def _messages_row(doc: TraceDoc, system: str) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [
        {"role": "user", "content": doc.prompt},
        {"role": "assistant", "content": model_text(doc.steps, doc.final_answer)},
    ]
    return {"id": doc.id, "messages": messages}


def _prompt_completion_row(doc: TraceDoc, system: str) -> dict[str, Any]:
    return {
        "id": doc.id,
        "prompt": prompt_turns(doc.prompt, system),
        "completion": completion_turn(doc.steps, doc.final_answer),
    }


FORMATS: dict[str, Callable[[TraceDoc, str], dict[str, Any]]] = {
    "trace": _trace_row,
    "tunix_sft": _sft_row,
    "messages": _messages_row,
    "prompt_completion": _prompt_completion_row,
}


def render_line(fmt: str, doc: TraceDoc, system: str = "") -> bytes:
    return orjson.dumps(FORMATS[fmt](doc, system)) + b"\n"
