// Runs: the list by state, a form for a new run, and a run's page.

import { field, formatNumber, h, input, section, select, table } from "../dom";
import { training } from "../rpc";
import { guard, writeButton } from "../ui";
import { TrainingRunState, type TrainingRun } from "../gen/tunixrt/v1/training_pb";
import { runPage } from "./run_page";
import { stateName } from "./run_state";

const STATES = ["ALL", "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"];


export function runsPanel(presets: string[]): HTMLElement {
  const [el, body] = section("Runs", "panel-runs");
  const state = select("state", STATES, "ALL");
  const filter = input("filter");
  filter.placeholder = 'filter, e.g. dataset = "datasets/demo-v1"';
  const list = h("div", { "data-testid": "run-list" });
  const page = h("div", { class: "detail", "data-testid": "run-page" });
  let closePage = () => {};

  async function load(): Promise<void> {
    await guard(list, async () => {
      const res = await training.listTrainingRuns({
        state: state.value === "ALL" ? TrainingRunState.UNSPECIFIED : TrainingRunState[state.value as keyof typeof TrainingRunState],
        filter: filter.value,
        pageSize: 50,
      });
      list.replaceChildren(
        table(
          ["run", "dataset", "state", "step", "best exact match"],
          res.trainingRuns.map((r) => [
            h("a", { href: "#", onclick: (e: Event) => (e.preventDefault(), open(r)) }, r.name),
            r.dataset,
            stateName(r.state),
            formatNumber(r.metrics?.step ?? 0n),
            r.bestCheckpointStep ? `${((r.metrics?.bestExactMatch ?? 0) * 100).toFixed(1)}% @ ${r.bestCheckpointStep}` : "-",
          ]),
          "runs-table",
        ),
      );
    });
  }

  function open(run: TrainingRun): void {
    closePage();
    const [view, close] = runPage(run.name, () => void load(), () => open(run));
    closePage = close;
    page.replaceChildren(view);
  }

  body.append(
    h("form", { onsubmit: (e: Event) => (e.preventDefault(), void load()) }, state, filter, h("button", {}, "List")),
    list,
    newRunForm(presets, (run) => (void load(), open(run))),
    page,
  );
  void load();
  return el;
}

function newRunForm(presets: string[], started: (run: TrainingRun) => void): HTMLElement {
  const dataset = input("dataset");
  dataset.placeholder = "datasets/NAME-VERSION";
  const preset = select("preset", presets, presets[0]);
  const steps = input("max_steps", "200", "number");
  const lr = input("learning_rate", "", "number");
  lr.step = "any";
  lr.placeholder = "preset default";
  // Empty fields (0) take the server's default for the preset.
  const optional = (name: string, hint = "default") => {
    const el = input(name, "", "number");
    el.placeholder = hint;
    return el;
  };
  const seqLen = optional("max_seq_len", "from the data");
  const evalEvery = optional("eval_every_steps", "default (-1: off)");
  const evalExamples = optional("eval_examples");
  const checkpointEvery = optional("checkpoint_every_steps");
  const num = (el: HTMLInputElement) => (el.value ? Number(el.value) : 0);
  const result = h("div", { "data-testid": "create-result" });
  const button = writeButton("Start run", () =>
    void guard(result, async () => {
      const run = await training.createTrainingRun({
        trainingRun: {
          dataset: dataset.value,
          model: { preset: preset.value },
          hyperparameters: {
            maxSteps: Number(steps.value),
            learningRate: num(lr),
            maxSeqLen: num(seqLen),
            evalEverySteps: num(evalEvery),
            evalExamples: num(evalExamples),
            checkpointEverySteps: num(checkpointEvery),
          },
        },
      });
      result.replaceChildren(h("p", {}, `started ${run.name}`));
      started(run);
    }), "start-run");
  return h(
    "div",
    { class: "form" },
    h("h3", {}, "New run"),
    field("dataset", dataset),
    field("preset", preset),
    field("steps", steps),
    field("learning rate", lr),
    field("max_seq_len", seqLen),
    field("eval every", evalEvery),
    field("eval examples", evalExamples),
    field("checkpoint every", checkpointEvery),
    button,
    result,
  );
}
