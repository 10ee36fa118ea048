// One run, live: loss, eval loss and exact match (and a GRPO run's reward) drawn
// as WatchTrainingRun streams them; its events, best checkpoint, Cancel and
// Resume, Generate, and its manifest.

import { draw, type Series } from "../chart";
import { formatNumber, h, table } from "../dom";
import { exports, training } from "../rpc";
import { errorBox, guard, writeButton } from "../ui";
import { follow } from "../watch";
import { TrainingMethod, TrainingRunState, type TrainingEvent, type TrainingRun } from "../gen/tunixrt/v1/training_pb";
import { stateName } from "./run_state";

const MAX_LOG_LINES = 300;

/** `reopen` starts the page again after Resume: the old stream ended with the run. */
export function runPage(
  name: string,
  changed: () => void,
  reopen: () => void,
): [HTMLElement, () => void] {
  const abort = new AbortController();
  const header = h("div", { "data-testid": "run-header" });
  const canvas = h("canvas", { width: "760", height: "300", "data-testid": "run-chart", "data-points": "0" });
  const evalCanvas = h("canvas", { width: "760", height: "200", "data-testid": "eval-chart" });
  const log = h("pre", { class: "log", "data-testid": "run-events" });
  const status = h("p", { "data-testid": "watch-status" });
  const loss: Series = { name: "loss", color: "#1f77b4", points: [] };
  const evalLoss: Series = { name: "eval loss", color: "#ff7f0e", points: [] };
  const exact: Series = { name: "exact match", color: "#2ca02c", points: [] };
  const reward: Series = { name: "reward", color: "#d62728", points: [] };
  let pending = false;
  let lines: string[] = [];

  function redraw(): void {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      draw(canvas, reward.points.length ? [loss, reward] : [loss]);
      draw(evalCanvas, [evalLoss, exact]);
      canvas.dataset.points = String(loss.points.length);
      log.textContent = lines.join("\n");
      log.scrollTop = log.scrollHeight;
    });
  }

  function onEvent(ev: TrainingEvent): void {
    const step = Number(ev.step);
    const e = ev.event;
    let line = "";
    switch (e.case) {
      case "stepMetrics":
        loss.points.push([step, e.value.loss]);
        if (e.value.grpo) reward.points.push([step, e.value.grpo.rewardMean]);
        if (step % 50 === 0) line = `step ${step}: loss ${formatNumber(e.value.loss)}, lr ${formatNumber(e.value.learningRate, 3)}`;
        break;
      case "evalMetrics":
        evalLoss.points.push([step, e.value.evalLoss]);
        exact.points.push([step, e.value.categoryMeanExactMatch || e.value.exactMatch]);
        line = `step ${step}: eval loss ${formatNumber(e.value.evalLoss)}, exact match ${(e.value.exactMatch * 100).toFixed(1)}%${e.value.best ? " (best)" : ""}`;
        break;
      case "checkpointSaved":
        line = `step ${step}: checkpoint ${e.value.path}`;
        void refresh(); // the page's step, losses and checkpoints
        break;
      case "stateChange":
        line = `${stateName(e.value.state)}: ${e.value.message}`;
        void refresh();
        changed();
        break;
      case "dataPrepared":
        line = `data: ${e.value.trainExamples} train / ${e.value.evalExamples} eval examples, max_seq_len ${e.value.maxSeqLen}`;
        break;
      case "warning":
        line = `warning ${e.value.reason}: ${e.value.message}`;
        break;
      case "summary":
        line = `summary: step ${e.value.step}, loss ${formatNumber(e.value.trainLoss)}`;
        break;
    }
    if (line) {
      lines.push(`#${ev.sequence} ${line}`);
      if (lines.length > MAX_LOG_LINES) lines = lines.slice(-MAX_LOG_LINES);
    }
    redraw();
  }

  async function refresh(): Promise<void> {
    await guard(header, async () => {
      const run = await training.getTrainingRun({ name });
      header.replaceChildren(summary(run, refresh, changed, reopen));
    });
  }

  void refresh();
  status.textContent = "following…";
  follow(name, onEvent, abort.signal, (n) => (status.textContent = `reconnecting (attempt ${n})…`))
    .then(() => (status.textContent = abort.signal.aborted ? "" : "the run has ended"))
    .catch((err) => status.replaceChildren(errorBox(err)));

  const view = h(
    "div",
    {},
    header,
    status,
    canvas,
    evalCanvas,
    h("h3", {}, "Events"),
    log,
    generateBox(name),
    manifestBox(name),
  );
  return [view, () => abort.abort()];
}

function summary(
  run: TrainingRun,
  refresh: () => Promise<void>,
  changed: () => void,
  reopen: () => void,
): HTMLElement {
  const m = run.metrics;
  const act = (what: "cancel" | "resume") =>
    void guard(out, async () => {
      if (what === "cancel") {
        await training.cancelTrainingRun({ name: run.name });
        await refresh();
      } else {
        await training.resumeTrainingRun({ name: run.name });
        reopen();
      }
      changed();
    });
  const out = h("div", {});
  out.append(
    h("h3", {}, run.name),
    table(
      ["", ""],
      [
        ["state", h("span", { "data-testid": "run-state" }, stateName(run.state))],
        ["message", run.stateMessage],
        ["dataset", run.dataset],
        ["model", `${run.model?.preset ?? ""} ${run.model?.localPath ?? ""}`],
        ["method", TrainingMethod[run.method] ?? ""],
        ["steps", `${m?.step ?? 0} / ${run.hyperparameters?.maxSteps ?? "?"}`],
        ["loss", m ? `${formatNumber(m.initialTrainLoss)} → ${formatNumber(m.trainLoss)}` : "-"],
        ["best checkpoint", run.bestCheckpointStep ? `step ${run.bestCheckpointStep}, exact match ${((m?.bestExactMatch ?? 0) * 100).toFixed(1)}%` : "-"],
        ["latest checkpoint", run.checkpointStep ? `step ${run.checkpointStep}` : "-"],
      ],
      "run-summary",
    ),
    writeButton("Cancel", () => act("cancel"), "cancel-run"),
    writeButton("Resume", () => act("resume"), "resume-run"),
  );
  // Cancel while it may still train; Resume once it stopped short.
  const live = run.state === TrainingRunState.QUEUED || run.state === TrainingRunState.RUNNING;
  const stopped = run.state === TrainingRunState.CANCELLED || run.state === TrainingRunState.FAILED;
  const [cancel, resume] = out.querySelectorAll("button");
  if (!live) cancel.disabled = true;
  if (!stopped) resume.disabled = true;
  return out;
}

function generateBox(name: string): HTMLElement {
  const prompt = h("textarea", { name: "prompt", rows: "3", cols: "80", "data-testid": "generate-prompt" });
  const out = h("div", { "data-testid": "generate-answer" });
  const button = h("button", {
    "data-testid": "generate-button",
    onclick: () =>
      void guard(out, async () => {
        out.textContent = "generating…";
        const res = await training.generate({ name, prompts: [prompt.value] });
        const g = res.generations[0];
        out.replaceChildren(h("p", {}, `step ${res.step}; answer: `, h("strong", {}, g?.answer ?? "")), h("pre", {}, g?.text ?? ""));
      }),
  }, "Generate");
  return h("div", {}, h("h3", {}, "Generate"), prompt, button, out);
}

function manifestBox(name: string): HTMLElement {
  const out = h("pre", { "data-testid": "run-manifest" });
  const button = h("button", {
    onclick: () =>
      void guard(out, async () => {
        const run = await training.getTrainingRun({ name });
        const hp = run.hyperparameters;
        const res = await exports.getTrainingManifest({
          dataset: run.dataset,
          model: run.model?.preset ?? "",
          hyperparameters: hp ? { max_steps: String(hp.maxSteps), learning_rate: String(hp.learningRate), batch_size: String(hp.batchSize) } : {},
        });
        out.textContent = res.yaml;
      }),
  }, "Manifest YAML");
  return h("div", {}, h("h3", {}, "Manifest"), button, out);
}
