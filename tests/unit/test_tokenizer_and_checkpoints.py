from __future__ import annotations

from pathlib import Path

import pytest

from tunixrt_server.core.presets import BYTE_EMBED
from tunixrt_server.core.rendering import END, START
from tunixrt_server.training import checkpoints
from tunixrt_server.training.tokenizer import VOCAB_SIZE, ByteTokenizer


def test_bytes_round_trip_and_turn_markers_are_single_ids() -> None:
    tok = ByteTokenizer()
    text = f"{START}user\nP(win) = 28/51 ♠{END}"
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert ids[0] == 3 and ids[-1] == 4
    # Ids past the vocabulary (the embedding is padded) decode to nothing.
    assert tok.decode([*tok.encode("ok"), VOCAB_SIZE, VOCAB_SIZE + 2]) == "ok"


def test_the_byte_presets_embedding_fits_the_byte_tokenizer() -> None:
    assert BYTE_EMBED == (VOCAB_SIZE + 7) // 8 * 8


def test_checkpoint_choice(tmp_path: Path) -> None:
    for step in (30, 40):
        (tmp_path / "checkpoints" / str(step)).mkdir(parents=True)
    (tmp_path / "checkpoints" / "50.orbax-checkpoint-tmp").mkdir()  # unfinished
    with pytest.raises(checkpoints.NoSuchCheckpoint, match="no best"):
        checkpoints.resolve(tmp_path, "best")
    (tmp_path / "best" / "20").mkdir(parents=True)
    assert checkpoints.resolve(tmp_path, "") == checkpoints.CheckpointRef("checkpoints", 40)
    assert checkpoints.resolve(tmp_path, "BEST") == checkpoints.CheckpointRef("best", 20)
    assert checkpoints.resolve(tmp_path, "30").path(tmp_path) == tmp_path / "checkpoints" / "30"
    with pytest.raises(checkpoints.NoSuchCheckpoint, match="kept: 20, 30, 40"):
        checkpoints.resolve(tmp_path, "7")
    with pytest.raises(ValueError):
        checkpoints.resolve(tmp_path, "newest")
