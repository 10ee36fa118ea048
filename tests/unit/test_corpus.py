"""The real corpus in corpus/ (see its NOTICE), through the pure modules: it
validates as it is, renders as the contract says, and tokenizes."""

from __future__ import annotations

import json
from pathlib import Path

from tunixrt_server.core.import_lines import parse_jsonl, trace_from_line
from tunixrt_server.core.rendering import completion_turn, prompt_turns, tunix_sft_text
from tunixrt_server.training.batches import Example, choose_max_seq_len, encode, token_lengths
from tunixrt_server.training.tokenizer import ByteTokenizer

CORPUS = Path(__file__).resolve().parents[2] / "corpus" / "dev-reasoning-v2.jsonl"


def test_the_corpus_validates_and_renders() -> None:
    traces = [trace_from_line(doc) for doc in parse_jsonl(CORPUS.read_bytes())]
    assert len(traces) == 550
    for trace in traces:
        steps = "\n".join(f"{n}. {s['content']}" for n, s in enumerate(trace.steps, 1))
        model = f"Reasoning:\n{steps}\nAnswer: " if trace.steps else "Answer: "
        expected = (
            f"<start_of_turn>user\n{trace.prompt}<end_of_turn>\n<start_of_turn>model\n"
            f"{model}{trace.final_answer}<end_of_turn>"
        )
        assert tunix_sft_text(trace.prompt, trace.steps, trace.final_answer) == expected
    assert {t.category for t in traces} == {"reasoning", "synthetic", "golden_style", "edge_case"}
    assert all(t.source == "dev-reasoning-v2" for t in traces)


def test_the_corpus_fits_its_chosen_length_with_whole_answers() -> None:
    docs = [json.loads(line) for line in CORPUS.read_text().splitlines()]
    examples = [
        Example(prompt_turns(d["prompt"]), completion_turn(d["steps"], d["final_answer"]))
        for d in docs
    ]
    tokenizer = ByteTokenizer()
    max_seq_len = choose_max_seq_len(token_lengths(examples, tokenizer), cap=1024)
    data = encode(examples, tokenizer, max_seq_len)
    # The length is the 99th percentile: at most 1% of prompts lose their start.
    assert max_seq_len % 64 == 0 and data.dropped == 0 and data.truncated <= len(examples) // 100
