from __future__ import annotations

from tunixrt_server.core.scoring import Example, extract_answer, normalize, score, unfinished


def test_answer_extraction_and_normalisation() -> None:
    assert extract_answer("Reasoning:\n1. x\nAnswer:  42 \nmore") == "42"
    assert extract_answer("no answer here") == ""
    assert normalize("  Paris. ") == normalize("paris")


def test_unfinished_outputs_are_counted_apart_from_wrong_ones() -> None:
    examples = [Example("p", "4", "math"), Example("p", "5", "math"), Example("p", "x", "")]
    outputs = ["Answer: 4", "Answer: 6", "Reasoning:\n1. still thinking"]
    result = score(examples, outputs)
    assert (result["correct_count"], result["unfinished_count"]) == (1, 1)
    assert result["per_category"]["math"] == {
        "example_count": 2,
        "correct_count": 1,
        "unfinished_count": 0,
        "accuracy": 0.5,
    }
    assert result["per_category"]["(none)"]["unfinished_count"] == 1
    assert [s["unfinished"] for s in result["samples"]] == [False, False, True]
    assert unfinished(outputs[2]) and not unfinished(outputs[1])
