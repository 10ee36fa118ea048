"""The SDK's streams across a server killed with SIGKILL: an export fails at once
with a retryable code (never hangs past its deadline), and a watch reconnects to
the restarted server and goes on after its last event, with no gap or repeat."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import ServerProcess
from tunixrt import Client, TunixRtError, Unavailable
from tunixrt.aio import AsyncClient
from tunixrt.generators import generate_jsonl
from tunixrt.v1 import training_pb2


def _kill(server: ServerProcess) -> None:
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()


def small_run(rt: Client) -> training_pb2.TrainingRun:
    """A 30-step run on 180 arithmetic traces: long enough to kill a server under."""
    rt.import_jsonl(generate_jsonl("arithmetic", 200, seed=3))
    dataset = rt.build_dataset("small", "v1", eval_fraction=0.1, seed=3)
    return rt.create_training_run(
        dataset.name,
        tokenizer="bytes",
        hyperparameters={"max_steps": 30, "eval_every_steps": -1, "max_seq_len": 256},
    )


def test_an_export_whose_server_is_killed_fails_at_once(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory()
    with server.client(timeout=60) as rt:
        rt.import_jsonl(generate_jsonl("arithmetic", 6_000, seed=8))
        dataset = rt.build_dataset("base", "v1", seed=8)
        stream = rt.export_chunks(dataset.name, rows_per_chunk=64, timeout=60)
        next(stream)  # the stream is under way
        began = time.monotonic()
        _kill(server)
        with pytest.raises(Unavailable):
            for _ in stream:
                time.sleep(0.01)
        assert time.monotonic() - began < 10  # not the deadline's 60 s


def test_a_watch_rides_out_a_server_restart(
    server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = server_factory(data_dir=data)
    with server.client(timeout=60) as rt:
        run = small_run(rt)
        seen: list[training_pb2.TrainingEvent] = []
        failure: list[BaseException] = []
        stepped = threading.Event()

        def watch() -> None:
            try:
                for event in rt.watch_training_run(run.name, timeout=300):
                    seen.append(event)
                    if event.HasField("step_metrics") and event.step >= 2:
                        stepped.set()
            except TunixRtError as exc:
                failure.append(exc)

        async def watch_async() -> None:  # tunixrt.aio reconnects alike
            async with AsyncClient(server.address) as client:
                async for event in client.watch_training_run(run.name):
                    seen_async.append(event)

        seen_async: list[training_pb2.TrainingEvent] = []
        watcher = threading.Thread(target=watch)
        async_watcher = threading.Thread(target=lambda: asyncio.run(watch_async()))
        watcher.start()
        async_watcher.start()
        assert stepped.wait(240), "the run never reached step 2"
        _kill(server)
        time.sleep(1.0)  # the watch is reconnecting meanwhile
        again = server_factory("--address", server.address, data_dir=data)
        watcher.join(240)
        async_watcher.join(60)
        assert not watcher.is_alive() and not failure, failure
        assert not async_watcher.is_alive()
    sequences = [e.sequence for e in seen]
    assert sequences == list(range(1, len(seen) + 1))  # no gap, no repeat
    assert seen[-1].HasField("state_change")
    with again.client() as rt:
        assert list(rt.watch_training_run(run.name)) == seen == seen_async
