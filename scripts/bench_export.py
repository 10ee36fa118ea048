"""Export speed: rows/s end to end (DB -> render -> gRPC -> client file) vs. a naive local script.

    python scripts/bench_export.py [--traces 100000] [--repeat 3]

The baseline, in the same run and on the same database file, reads the same
rows with plain sqlite3, renders tunix_sft with the stdlib json module and
writes JSONL to a file in-process: what a user would write without the
service. Best of --repeat runs each.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

from _bench import generated_lines, rate, running_server
from tunixrt import Client


def naive_export(db_path: Path, key: str, out: Path) -> int:
    db = sqlite3.connect(db_path)
    rows = db.execute(
        "SELECT t.id, t.prompt, t.final_answer, t.steps_json FROM dataset_items i"
        " JOIN datasets d ON d.seq = i.dataset_seq JOIN traces t ON t.seq = i.trace_seq"
        " WHERE d.key = ? ORDER BY i.position",
        (key,),
    )
    count = 0
    with out.open("w") as fh:
        for trace_id, prompt, answer, steps_json in rows:
            steps = json.loads(steps_json)
            if steps:
                lines = "\n".join(f"{n}. {s['content']}" for n, s in enumerate(steps, 1))
                model = f"Reasoning:\n{lines}\nAnswer: {answer}"
            else:
                model = f"Answer: {answer}"
            text = (
                f"<start_of_turn>user\n{prompt}<end_of_turn>\n"
                f"<start_of_turn>model\n{model}<end_of_turn>"
            )
            fh.write(json.dumps({"id": trace_id, "text": text}) + "\n")
            count += 1
    db.close()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with running_server(tmp / "data") as (address, _pid), Client(address) as rt:
            rt.import_jsonl(generated_lines(args.traces))
            ds = rt.build_dataset("bench", "v1")
            naive_times, service_times = [], []
            for _ in range(args.repeat):
                start = time.perf_counter()
                assert (
                    naive_export(tmp / "data" / "tunixrt.db", ds.dataset_key, tmp / "naive.jsonl")
                    == args.traces
                )
                naive_times.append(time.perf_counter() - start)
                start = time.perf_counter()
                summary = rt.export_to_file(ds.name, tmp / "service.jsonl", format="tunix_sft")
                service_times.append(time.perf_counter() - start)
                assert summary.row_count == args.traces
        naive, service = min(naive_times), min(service_times)
        same_text = [
            json.loads(x)["text"] for x in (tmp / "naive.jsonl").read_text().splitlines()[:100]
        ] == [json.loads(x)["text"] for x in (tmp / "service.jsonl").read_text().splitlines()[:100]]
    print(f"rows:                              {args.traces:,} (tunix_sft, generated traces)")
    print(f"naive local sqlite3+json script:   {rate(args.traces, naive)}  ({naive:.2f}s)")
    print(f"ExportDataset over gRPC to a file: {rate(args.traces, service)}  ({service:.2f}s)")
    print(f"ratio service/naive:               {naive / service:.2f}  (goal >= 1.0)")
    print(f"identical rendering (first 100):   {same_text}")


if __name__ == "__main__":
    main()
