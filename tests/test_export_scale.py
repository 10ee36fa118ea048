"""A 200,000-trace export: constant server memory, and the file loads in HF datasets."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil

from conftest import ServerProcess
from tunixrt import Client
from tunixrt.generators import generate_jsonl

COUNT = 200_000


def _lines(count: int) -> list[bytes]:
    return list(generate_jsonl("arithmetic", count, seed=0))


def test_200k_export_constant_memory_and_hf_loadable(
    server: ServerProcess, client: Client, tmp_path: Path
) -> None:
    assert client.import_jsonl(_lines(COUNT), batch_lines=5_000).accepted_count == COUNT
    ds = client.build_dataset("big", "v1", eval_fraction=0.01)
    assert ds.stats.trace_count == COUNT

    proc = psutil.Process(server.proc.pid)
    baseline = proc.memory_info().rss
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        out = tmp_path / "big.jsonl"
        summary = client.export_to_file(ds.name, out, format="messages")
    finally:
        done.set()
        sampler.join()
    growth_mb = (peak - baseline) / 1e6
    print(f"server RSS growth during a {COUNT:,}-row export: {growth_mb:.1f} MB")
    assert summary.row_count == COUNT
    assert growth_mb < 100, f"server RSS grew {growth_mb:.1f} MB"

    from datasets import load_dataset

    loaded = load_dataset(
        "json", data_files=str(out), split="train", cache_dir=str(tmp_path / "hf")
    )
    assert loaded.num_rows == COUNT
    assert loaded[0]["messages"][0]["role"] == "user"
