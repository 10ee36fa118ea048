"""config.json <-> Tunix gemma3 ModelConfig fields, and what a model directory must hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gemma_checkpoint as gemma
import pytest

from tunixrt_server.core.presets import PRESETS
from tunixrt_server.training import hf_layout


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


def test_inspect_says_what_a_directory_lacks(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "config.json").mkdir()
    with pytest.raises(ValueError, match="cannot be read"):
        hf_layout.inspect(tmp_path)
    (tmp_path / "config.json").rmdir()
    (tmp_path / "config.json").write_text(json.dumps({**gemma.SCALED_DOWN, "tunixrt": 1}))
    with pytest.raises(ValueError, match=r"no tokenizer\.model"):
        hf_layout.inspect(tmp_path)
    (tmp_path / "config.json").write_text(
        json.dumps({**gemma.SCALED_DOWN, "tunixrt": {"tokenizer": "bytes"}})
    )
    assert hf_layout.inspect(tmp_path).tokenizer == hf_layout.BYTES
