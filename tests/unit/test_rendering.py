from __future__ import annotations

import orjson

from tunixrt_server.core.rendering import (
    ExportRow,
    completion_turn,
    prompt_turns,
    render_lines,
    tunix_sft_text,
)

STEPS = [{"i": 0, "type": "calc", "content": "2 + 2 = 4"}, {"i": 1, "type": "x", "content": "ok"}]


def test_tunix_sft_is_the_published_rendering() -> None:
    text = tunix_sft_text("What is 2+2?", STEPS, "4")
    assert text == (
        "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n"
        "Reasoning:\n1. 2 + 2 = 4\n2. ok\nAnswer: 4<end_of_turn>"
    )
    assert text == prompt_turns("What is 2+2?") + completion_turn(STEPS, "4")
    assert tunix_sft_text("p", [], "a", "Be brief.") == (
        "<start_of_turn>user\nBe brief.\n\np<end_of_turn>\n<start_of_turn>model\n"
        "Answer: a<end_of_turn>"
    )


def test_every_format_renders_one_json_line_per_row() -> None:
    row = ExportRow("id-1", "1.0", "p", "a", orjson.dumps(STEPS).decode(), {"k": 1}, 0)
    for fmt, keys in {
        "trace": {"id", "trace_version", "prompt", "final_answer", "steps", "meta", "create_time"},
        "tunix_sft": {"id", "text"},
        "messages": {"id", "messages"},
        "prompt_completion": {"id", "prompt", "completion"},
    }.items():
        (line,) = render_lines(fmt, [row])
        assert line.endswith(b"\n") and set(orjson.loads(line)) == keys
    assert orjson.loads(render_lines("trace", [row])[0])["create_time"] == "1970-01-01T00:00:00Z"
