"""A resident inference process for one run: Generate, EvaluateRun and ExportModel
without a cold start.

    python -m tunixrt_server.training.inference_worker --run-dir DIR

Reads one JSON request per line on stdin and answers one JSON line each on its
original stdout; it keeps the model, the restored checkpoint and the compiled
sampler shapes between requests, so only the first call pays for the JAX
import, the restore and the compile. It exits when stdin closes (the server
let it go) or its parent dies.

Request:  {"checkpoint": {"directory": "checkpoints"|"best", "step": N},
           "prompts": [...], "max_new_tokens": N (0: from "references"),
           "references": [completion texts], "temperature": T, "seed": S}
Answer:   {"texts": [...], "step": N, "max_new_tokens": N}  or  {"error": "..."}
Export:   {"checkpoint": {...}, "export": "/abs/dir"}  ->  {"step": N}
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from . import child
from .batches import answer_budget
from .checkpoints import CheckpointRef


def _answer(model: Any, request: dict[str, Any]) -> dict[str, Any]:
    ref = CheckpointRef(**request["checkpoint"])
    model.load(ref)
    if "export" in request:
        model.export(Path(request["export"]))
        return {"step": ref.step}
    decoder = model.decoder
    max_new = request.get("max_new_tokens") or answer_budget(
        [decoder.token_count(r) for r in request.get("references", [])]
    )
    texts = decoder(
        request["prompts"], max_new, request.get("temperature", 0.0), request.get("seed", 0)
    )
    return {"texts": texts, "step": ref.step, "max_new_tokens": max_new}


def serve(run_dir: Path, requests: Any, answers: Any) -> None:
    from .tunix_adapter import InferenceModel  # JAX loads here, never in the server

    model = InferenceModel(run_dir)
    for line in requests:
        try:
            answer = _answer(model, json.loads(line))
        except Exception as exc:  # answer, and stay up for the next request
            traceback.print_exc()
            answer = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tunixrt-inference")
    parser.add_argument("--run-dir", required=True)
    args = parser.parse_args(argv)
    child.die_with_parent()
    serve(Path(args.run_dir), sys.stdin, child.server_channel())
    return 0


if __name__ == "__main__":
    sys.exit(main())
