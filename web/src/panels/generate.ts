// Generate: the server's trace generators (High Card Duel, arithmetic, …), as a
// preview or stored.

import { field, h, input, section, select, table } from "../dom";
import { traces } from "../rpc";
import { guard, role } from "../ui";
import type { TraceGenerator } from "../gen/tunixrt/v1/trace_pb";

export function generatePanel(): HTMLElement {
  const [el, body] = section("Generate", "panel-generate");
  void guard(body, async () => {
    const { generators } = await traces.listGenerators({});
    body.replaceChildren(form(generators));
  });
  return el;
}

function form(generators: TraceGenerator[]): HTMLElement {
  const name = select("generator", generators.map((g) => g.name));
  const count = input("count", "10", "number");
  const seed = input("seed", "0", "number");
  const persist = h("input", { type: "checkbox", name: "persist" });
  if (!role.canWrite) {
    persist.disabled = true;
    persist.title = "a reader's token cannot store traces: preview only";
  }
  const options = h("div", {});
  const result = h("div", { "data-testid": "generate-result" });
  const about = h("p", {});

  function showOptions(): void {
    const g = generators.find((x) => x.name === name.value);
    about.textContent = g ? `${g.description} (version ${g.version}, at most ${g.maxCount})` : "";
    options.replaceChildren(
      ...(g?.parameters ?? []).map((p) =>
        field(p.name, p.choices.length ? select(`option:${p.name}`, p.choices, p.defaultValue) : input(`option:${p.name}`, p.defaultValue)),
      ),
    );
  }
  name.addEventListener("change", showOptions);
  showOptions();

  async function run(e: Event): Promise<void> {
    e.preventDefault();
    await guard(result, async () => {
      const opts: Record<string, string> = {};
      options.querySelectorAll<HTMLInputElement | HTMLSelectElement>("[name^='option:']").forEach((o) => {
        if (o.value) opts[o.name.slice(7)] = o.value;
      });
      const res = await traces.generateTraces({
        generator: name.value,
        count: Number(count.value),
        seed: BigInt(seed.value || "0"),
        options: opts,
        persist: persist.checked,
      });
      result.replaceChildren(
        h("p", {}, persist.checked ? `${res.storedCount} traces stored` : "preview: nothing stored"),
        table(
          ["prompt", "answer", "steps", "category"],
          res.traces.map((t) => [t.prompt, t.finalAnswer, t.steps.length, String(t.meta?.["category"] ?? "")]),
          "generate-table",
        ),
      );
    });
  }

  return h(
    "form",
    { onsubmit: (e: Event) => void run(e) },
    field("generator", name),
    about,
    options,
    field("count", count),
    field("seed", seed),
    field("persist", persist),
    h("button", { "data-testid": "generate-traces" }, "Generate"),
    result,
  );
}
