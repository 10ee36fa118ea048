"""`tunix-rt train` and `tunix-rt watch`: start a run, follow one live."""

from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson

from ..client import Client
from ..stream import Stream
from ..v1 import training_pb2
from .output import (
    Columns,
    Command,
    emit_one,
    sparkline,
    state_text,
    time_text,
    to_dict,
)

RUN_COLUMNS: Columns = {
    "name": lambda r: r.name,
    "dataset": lambda r: r.dataset,
    "state": lambda r: state_text(training_pb2.TrainingRunState.Name(r.state)),
    "step": lambda r: f"{r.metrics.step}/{r.hyperparameters.max_steps}",
    "loss": lambda r: f"{r.metrics.train_loss:.3f}" if r.metrics.step else "",
    "eval loss": lambda r: f"{r.metrics.eval_loss:.3f}" if r.metrics.eval_loss else "",
    "created": lambda r: time_text(r.create_time),
}


def train(args: argparse.Namespace, rt: Client) -> int:
    labels = dict(item.split("=", 1) for item in args.label)
    hp = {
        "max_steps": args.steps,
        "num_epochs": args.epochs,
        "batch_size": args.batch_size,
        "max_seq_len": args.seq_len,
        "learning_rate": args.learning_rate,
        "eval_every_steps": args.eval_every,
        "eval_examples": args.eval_examples,
        "checkpoint_every_steps": args.checkpoint_every,
        "seed": args.seed,
        "system_instruction": args.system_instruction,
    }
    grpo = {
        "num_generations": args.generations,
        "temperature": args.temperature,
        "max_new_tokens": args.max_new_tokens,
        "beta": args.beta,
        "loss": f"GRPO_LOSS_{args.grpo_loss.upper()}" if args.grpo_loss else "",
        "rollout_engine": args.rollout_engine,
    }
    given_grpo = {k: v for k, v in grpo.items() if v}
    rewards = {}
    for item in args.reward:
        name, _, weight = item.partition("=")
        rewards[name] = float(weight or 1.0)
    run = rt.create_training_run(
        args.dataset,
        preset=args.preset,
        local_path=args.local_path,
        method=args.method,
        grpo=given_grpo or None,
        rewards=rewards,
        tokenizer=args.tokenizer,
        vocab_size=args.vocab_size,
        hyperparameters={k: v for k, v in hp.items() if v},
        lora_rank=args.lora_rank,
        mesh={"fsdp": args.fsdp, "tp": args.tp},
        created_by=args.created_by or os.environ.get("USER", ""),
        labels=labels,
        validate_only=args.validate_only,
    )
    if args.validate_only:
        emit_one(args, run)
        return 0
    if args.json:
        emit_one(args, run)
    else:
        print(f"started {run.name} on {run.dataset}", file=sys.stderr)
    if args.detach:
        return 0
    args.run = run.name
    args.since_step = 0
    return watch(args, rt)


T = TypeVar("T")
_END = object()


def interruptible(stream: Stream[T]) -> Iterator[T]:
    """Items of a blocking stream, read on a daemon thread: the main thread only waits
    on a queue in short slices, so Ctrl-C is handled at once whatever the stream or
    the machine's load is doing, and leaving early closes (cancels) the stream."""
    items: queue.Queue[Any] = queue.Queue(maxsize=1024)

    def pump() -> None:
        try:
            for item in stream:
                items.put(item)
            items.put(_END)
        except BaseException as exc:  # handed to the main thread
            items.put(exc)

    threading.Thread(target=pump, name="stream", daemon=True).start()
    try:
        while True:
            try:
                item = items.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stream.cancel()  # thread-safe; the reader thread then ends


def watch(args: argparse.Namespace, rt: Client) -> int:
    from ..monitor import LossHistory, follow, save_loss_plot

    events = interruptible(rt.watch_training_run(args.run, since_step=args.since_step))
    if args.json:
        history = LossHistory()
        for event in events:
            history.add(event)
            sys.stdout.write(orjson.dumps(to_dict(event)).decode() + "\n")
            sys.stdout.flush()
    else:
        history = follow(events, title=args.run.removeprefix("trainingRuns/")[:8])
        losses = [loss for _, loss in history.train]
        if losses:
            print(f"loss {losses[0]:.3f} {sparkline(losses)} {losses[-1]:.3f}")
        rewards = [reward for _, reward in history.reward]
        if rewards:
            print(f"reward {rewards[0]:.3f} {sparkline(rewards)} {rewards[-1]:.3f}")
        print(f"{state_text(history.final_state)}: {history.final_message}")
    if args.png:
        save_loss_plot(history, args.png, title=args.run)
        print(f"loss curve written to {args.png}", file=sys.stderr)
    return 0 if history.final_state.endswith("SUCCEEDED") else 1


def add_commands(sub: Any, command: Command) -> None:
    p = command(sub, "train", train, "Start a training run, then follow it like `watch`.")
    p.add_argument("dataset", help="datasets/{key} or a bare key")
    p.add_argument("--preset", default="", help="model preset (default tiny-gemma3)")
    p.add_argument(
        "--local-path",
        "--from",
        default="",
        help="start from a model: trainingRuns/{uuid} or an exported dir in the data dir",
    )
    p.add_argument(
        "--method",
        choices=["sft", "grpo"],
        default="",
        help="sft (default) imitates the traces; grpo reinforces answers the rewards score",
    )
    p.add_argument(
        "--reward",
        action="append",
        default=[],
        help="GRPO: NAME=WEIGHT, repeatable (default exact_match=1; see `tunix-rt info`)",
    )
    p.add_argument("--generations", type=int, default=0, help="GRPO: completions per prompt")
    p.add_argument("--temperature", type=float, default=0.0, help="GRPO: sampling temperature")
    p.add_argument(
        "--max-new-tokens", type=int, default=0, help="GRPO: tokens per completion (default: data)"
    )
    p.add_argument("--beta", type=float, default=0.0, help="GRPO: KL coefficient (-1: none)")
    p.add_argument("--grpo-loss", choices=["grpo", "dapo", "dr_grpo"], default="")
    p.add_argument("--rollout-engine", default="", help="GRPO: vanilla (default), vllm, ...")
    p.add_argument(
        "--tokenizer",
        choices=["subword", "bytes"],
        default="",
        help="a from-scratch model's tokenizer (default subword: trained on the train split)",
    )
    p.add_argument("--vocab-size", type=int, default=0, help="subword pieces (default 1024)")
    p.add_argument("--steps", type=int, default=0, help="max steps (default 200)")
    p.add_argument("--epochs", type=int, default=0, help="passes over the train split, not --steps")
    p.add_argument(
        "--validate-only", action="store_true", help="check the run and print it; start nothing"
    )
    p.add_argument("--batch-size", type=int, default=0)
    p.add_argument("--seq-len", type=int, default=0)
    p.add_argument("--learning-rate", type=float, default=0.0)
    p.add_argument("--eval-every", type=int, default=0)
    p.add_argument(
        "--eval-examples",
        type=int,
        default=0,
        help="exact-match sample per eval (default 64; -1: none)",
    )
    p.add_argument("--checkpoint-every", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--system-instruction", default="")
    p.add_argument("--lora-rank", type=int, default=0, help="> 0 trains LoRA adapters")
    p.add_argument(
        "--fsdp", type=int, default=0, help="devices on the fsdp axis (default: all local)"
    )
    p.add_argument("--tp", type=int, default=0, help="devices on the tensor-parallel axis")
    p.add_argument("--label", action="append", default=[], help="KEY=VALUE, repeatable")
    p.add_argument("--created-by", default="")
    p.add_argument("--detach", action="store_true", help="print the run and return")
    p.add_argument("--png", type=Path, help="save the loss curve here when it ends")

    p = command(sub, "watch", watch, "Follow a run: live progress, loss curve, optional PNG.")
    p.add_argument("run", help="trainingRuns/{uuid} or a bare uuid")
    p.add_argument("--since-step", type=int, default=0)
    p.add_argument("--png", type=Path, help="save the loss curve here when it ends")
