#!/usr/bin/env bash
# The journey with nothing but grpcurl and JSON (server reflection, no .proto files):
# create traces, list them, export three by name, generate episodes on the server and
# export them by filter, build a dataset, export it, write its tunix-rt manifest, train,
# watch, generate.
#
#   scripts/grpcurl_journey.sh [HOST:PORT]        (default 127.0.0.1:50051)
#
# GRPCURL overrides the binary (default: .venv/bin/grpcurl from the dev extras);
# STEPS the training steps (default 30).
set -euo pipefail
ADDR=${1:-127.0.0.1:50051}
GRPCURL=${GRPCURL:-$(dirname "$0")/../.venv/bin/grpcurl}
STEPS=${STEPS:-30}
call() { "$GRPCURL" -plaintext -d "$2" "$ADDR" "tunixrt.v1.$1"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
# An export's messages (base64 chunks, then a summary) as its JSONL rows, then the
# summary on a last line of its own.
exported() { python3 -c '
import base64, json, sys
messages = json.loads("[" + sys.stdin.read().replace("}\n{", "},{") + "]")
data = b"".join(base64.b64decode(m["chunk"]["data"]) for m in messages if "chunk" in m)
sys.stdout.write(data.decode())
print(json.dumps(messages[-1]["summary"]))'; }

echo "== services"
"$GRPCURL" -plaintext "$ADDR" list

echo "== CreateTrace x 24"
for a in $(seq 1 24); do
  b=$((a * 3))
  call TraceService/CreateTrace "{\"trace\": {\"prompt\": \"What is $a + $b?\",
    \"final_answer\": \"$((a + b))\",
    \"steps\": [{\"i\": 0, \"type\": \"calc\", \"content\": \"$a + $b = $((a + b))\"}],
    \"meta\": {\"source\": \"grpcurl\", \"category\": \"arithmetic\"}},
    \"request_id\": \"grpcurl-journey-$a\"}" > /dev/null
done

echo "== ListTraces (filter on meta)"
call TraceService/ListTraces '{"filter": "source = \"grpcurl\"", "page_size": 2}'

echo "== ExportTraces (three listed traces, no dataset: rows in the order given)"
NAMES=$(call TraceService/ListTraces '{"filter": "source = \"grpcurl\"", "page_size": 3}' \
  | python3 -c 'import json, sys; print(json.dumps([t["name"] for t in json.load(sys.stdin)["traces"]][::-1]))')
call ExportService/ExportTraces "{\"names\": $NAMES, \"format\": \"EXPORT_FORMAT_TUNIX_RT_TRACE\"}" \
  | exported | NAMES=$NAMES python3 -c '
import json, os, sys
rows = [json.loads(line) for line in sys.stdin.read().splitlines()[:-1]]
for row in rows:
    print(row["id"], row["prompts"])
asked = [name.removeprefix("traces/") for name in json.loads(os.environ["NAMES"])]
print("rows in the order given:", [row["id"] for row in rows] == asked)'

echo "== GenerateTraces (10 High Card Duel episodes, stored on the server; names and meta back)"
call TraceService/GenerateTraces '{"generator": "high_card_duel", "count": 10, "seed": 7,
  "persist": true, "view": "TRACE_VIEW_BASIC"}' | python3 -c '
import json, sys
reply = json.load(sys.stdin)
print("stored", reply["stored_count"])
for t in reply["traces"][:3]:
    print(t["name"], t["meta"]["my_card"], t["meta"]["result"])'

echo "== ExportTraces by filter (the generated episodes, newest first, no dataset)"
call ExportService/ExportTraces '{"filter": "source = \"high_card_duel\"", "limit": 10,
  "format": "EXPORT_FORMAT_TRAINING_EXAMPLE"}' | exported | tail -n 1

echo "== BuildDataset"
call DatasetService/BuildDataset '{"dataset_name": "grpcurl", "version": "v1",
  "filter": "source = \"grpcurl\"", "eval_fraction": 0.25, "seed": 1}' \
  | field '["stats"]'

echo "== ExportDataset (tunix_sft, server streaming: base64 chunks, then a summary)"
call ExportService/ExportDataset '{"dataset": "datasets/grpcurl-v1", "format": "EXPORT_FORMAT_TUNIX_SFT",
  "split": "DATASET_SPLIT_TRAIN"}' | exported | sed -n '1p;$p'

echo "== GetTrainingManifest (the tunix-rt project's shape)"
call ExportService/GetTrainingManifest '{"dataset": "datasets/grpcurl-v1",
  "style": "MANIFEST_STYLE_TUNIX_RT", "hyperparameters": {"num_epochs": "3"}}' | field '["yaml"]'

echo "== CreateTrainingRun"
RUN=$(call TrainingService/CreateTrainingRun "{\"training_run\": {\"dataset\": \"datasets/grpcurl-v1\",
  \"hyperparameters\": {\"max_steps\": $STEPS, \"max_seq_len\": 64, \"eval_every_steps\": 10,
  \"checkpoint_every_steps\": 10}, \"labels\": {\"via\": \"grpcurl\"}}}" | field '["name"]')
echo "$RUN"

echo "== WatchTrainingRun (server streaming until the run ends)"
call TrainingService/WatchTrainingRun "{\"name\": \"$RUN\"}" \
  | python3 -c '
import json, sys
buf = ""
for line in sys.stdin:
    buf += line
    if line.rstrip() == "}":
        event, buf = json.loads(buf), ""
        kind = [k for k in event if k not in ("sequence", "step", "time")][0]
        print(event["sequence"], event.get("step", 0), kind, json.dumps(event[kind]))'

echo "== GetTrainingRun"
call TrainingService/GetTrainingRun "{\"name\": \"$RUN\"}" | field '["state"]'

echo "== Generate"
call TrainingService/Generate "{\"name\": \"$RUN\", \"prompts\": [\"What is 2 + 6?\"],
  \"max_new_tokens\": 24}"
