// A tunix-rt client in Node.js, straight from proto/ (no generated code):
// lists the newest traces, then watches a training run to its end.
//
//   npm install && node list_and_watch.js ADDRESS [trainingRuns/UUID] [--include DIR]...
//
// --include adds proto include dirs for google/api/*.proto (e.g. the
// site-packages dir of googleapis-common-protos). Output: JSON lines.
"use strict";
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const args = process.argv.slice(2);
const includes = [path.join(__dirname, "..", "..", "proto")];
const positional = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--include") includes.push(args[++i]);
  else positional.push(args[i]);
}
const [address = "127.0.0.1:50051", runName] = positional;

const definition = protoLoader.loadSync(
  ["tunixrt/v1/trace.proto", "tunixrt/v1/training.proto"],
  { includeDirs: includes, keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true }
);
const v1 = grpc.loadPackageDefinition(definition).tunixrt.v1;
const creds = grpc.credentials.createInsecure();
const traces = new v1.TraceService(address, creds);
const training = new v1.TrainingService(address, creds);
const print = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

traces.ListTraces({ page_size: 5 }, (err, page) => {
  if (err) {
    console.error(`ListTraces: ${err.code} ${err.details}`);
    process.exit(1);
  }
  for (const t of page.traces) print({ trace: t.name, prompt: t.prompt, final_answer: t.final_answer });
  if (!runName) return;
  const stream = training.WatchTrainingRun({ name: runName });
  stream.on("data", (event) => {
    const kind = event.event;
    print({ sequence: Number(event.sequence), step: Number(event.step), kind, [kind]: event[kind] });
  });
  stream.on("error", (e) => {
    console.error(`WatchTrainingRun: ${e.code} ${e.details}`);
    process.exit(1);
  });
  stream.on("end", () => process.exit(0));
});
