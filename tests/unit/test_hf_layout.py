"""config.json <-> Tunix gemma3 ModelConfig fields, and what a model directory must hold."""

from __future__ import annotations

from typing import Any

import gemma_checkpoint as gemma
import pytest

from tunixrt_server.training import hf_layout
from tunixrt_server.training.presets import PRESETS


def test_published_270m_config_gives_tunix_gemma3_270m() -> None:
    from tunix.models.gemma3 import model as gemma3

    tunix = gemma3.ModelConfig.gemma3_270m()
    fields = hf_layout.model_config(gemma.GEMMA3_270M)
    assert fields == {name: getattr(tunix, name) for name in fields}
    assert PRESETS["gemma3-270m"].named_config == "gemma3_270m"


def test_written_config_reads_back() -> None:
    fields = hf_layout.model_config(gemma.SCALED_DOWN)
    written = hf_layout.hf_config(fields, {"bos_token_id": 2})
    assert hf_layout.model_config(written) == fields
    assert written["bos_token_id"] == 2


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"model_type": "gemma3"}, "gemma3_text"),
        ({"hidden_size": None}, "hidden_size"),
        ({"query_pre_attn_scalar": 1}, "query_pre_attn_scalar"),
        ({"layer_types": ["full_attention"] * 2}, "layer_types"),
        ({"rope_scaling": {"factor": 8.0}}, "rope_scaling"),
    ],
)
def test_refuses_what_tunix_cannot_build(change: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        hf_layout.model_config({**gemma.SCALED_DOWN, **change})
