// Traces: a filtered list with paging, one trace in full, and a JSONL import.

import { h, input, section, table } from "../dom";
import { traces } from "../rpc";
import { errorBox, guard, writeButton } from "../ui";
import type { Trace } from "../gen/tunixrt/v1/trace_pb";
import { ConnectError } from "@connectrpc/connect";

// One BatchCreateTraces call holds at most 10,000 traces; smaller calls keep a
// bad line's rejection to its own part of the file.
const LINES_PER_CALL = 2_000;

function short(text: string, n = 80): string {
  return text.length > n ? `${text.slice(0, n)}…` : text;
}

export function tracesPanel(): HTMLElement {
  const [el, body] = section("Traces", "panel-traces");
  const filter = input("filter");
  filter.placeholder = 'filter, e.g. meta.category = "game"';
  const list = h("div", { "data-testid": "trace-list" });
  const detail = h("div", { class: "detail", "data-testid": "trace-detail" });
  const pages: string[] = [""];
  let page = 0;

  async function load(): Promise<void> {
    await guard(list, async () => {
      const res = await traces.listTraces({ filter: filter.value, pageSize: 20, pageToken: pages[page] });
      pages[page + 1] = res.nextPageToken;
      list.replaceChildren(
        table(
          ["name", "prompt", "answer", "steps"],
          res.traces.map((t) => [
            h("a", { href: "#", onclick: (e: Event) => (e.preventDefault(), void show(t.name)) }, t.name),
            short(t.prompt),
            short(t.finalAnswer, 30),
            t.stepCount,
          ]),
          "traces-table",
        ),
        h(
          "div",
          {},
          h("button", { onclick: () => ((page = Math.max(0, page - 1)), void load()), ...(page ? {} : { disabled: true }) }, "Previous"),
          h("button", { onclick: () => ((page += 1), void load()), ...(res.nextPageToken ? {} : { disabled: true }) }, "Next"),
          ` page ${page + 1}`,
        ),
      );
    });
  }

  async function show(name: string): Promise<void> {
    await guard(detail, async () => detail.replaceChildren(traceView(await traces.getTrace({ name }))));
  }

  body.append(
    h("form", { onsubmit: (e: Event) => (e.preventDefault(), (page = 0), void load()) }, filter, h("button", {}, "List")),
    list,
    detail,
    importForm(() => void load()),
  );
  void load();
  return el;
}

function traceView(t: Trace): HTMLElement {
  return h(
    "div",
    {},
    h("h3", {}, t.name),
    h("p", {}, h("strong", {}, "Prompt: "), t.prompt),
    h("ol", { start: "0" }, ...t.steps.map((s) => h("li", {}, h("em", {}, s.type), " ", s.content))),
    h("p", {}, h("strong", {}, "Answer: "), t.finalAnswer),
    h("pre", {}, JSON.stringify(t.meta ?? {}, null, 2)),
  );
}

function importForm(done: () => void): HTMLElement {
  const file = h("input", { type: "file", accept: ".jsonl,.json,.txt", name: "file", "data-testid": "import-file" });
  const result = h("div", { "data-testid": "import-result" });
  const button = writeButton("Import", () => void run(), "import-button");

  async function run(): Promise<void> {
    const chosen = file.files?.[0];
    if (!chosen) return;
    result.replaceChildren("importing…");
    const lines = (await chosen.text()).split("\n");
    const out: HTMLElement[] = [];
    let created = 0;
    for (let start = 0; start < lines.length; start += LINES_PER_CALL) {
      const part = lines.slice(start, start + LINES_PER_CALL);
      // jsonl[n] counts non-blank lines; map it back to the file's line numbers.
      const lineOf = part.flatMap((l, n) => (l.trim() ? [start + n + 1] : []));
      if (!lineOf.length) continue;
      try {
        const res = await traces.batchCreateTraces({
          jsonl: new TextEncoder().encode(part.join("\n")),
          sourceFile: chosen.name,
        });
        created += Number(res.createdCount);
      } catch (err) {
        const box = errorBox(err);
        box.querySelectorAll("li").forEach((li) => {
          li.textContent = (li.textContent ?? "").replace(/^jsonl\[(\d+)\]/, (_, n: string) => `line ${lineOf[Number(n)]}`);
        });
        out.push(h("p", {}, `lines ${lineOf[0]}–${lineOf[lineOf.length - 1]} not stored:`), box);
        if (!(err instanceof ConnectError)) break;
      }
    }
    result.replaceChildren(h("p", { "data-testid": "import-count" }, `${created.toLocaleString("en")} traces stored`), ...out);
    done();
  }

  return h("div", { class: "import" }, h("h3", {}, "Import JSONL"), file, button, result);
}
