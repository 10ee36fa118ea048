// Datasets: the list, a build form, one dataset's stats, its manifest, and an
// export whose SHA-256 the page checks against the server's summary.

import { field, formatNumber, h, input, section, select, table } from "../dom";
import { datasets, exports } from "../rpc";
import { guard, writeButton } from "../ui";
import { SelectionStrategy, type Dataset } from "../gen/tunixrt/v1/dataset_pb";
import { ExportFormat } from "../gen/tunixrt/v1/export_pb";

export function datasetsPanel(): HTMLElement {
  const [el, body] = section("Datasets", "panel-datasets");
  const list = h("div", { "data-testid": "dataset-list" });
  const detail = h("div", { class: "detail", "data-testid": "dataset-detail" });

  async function load(): Promise<void> {
    await guard(list, async () => {
      const res = await datasets.listDatasets({ pageSize: 100 });
      list.replaceChildren(
        table(
          ["name", "traces", "train / eval", "strategy", "created"],
          res.datasets.map((d) => [
            h("a", { href: "#", onclick: (e: Event) => (e.preventDefault(), show(d)) }, d.name),
            formatNumber(d.stats?.traceCount ?? 0n),
            `${d.stats?.trainCount ?? 0} / ${d.stats?.evalCount ?? 0}`,
            SelectionStrategy[d.strategy],
            d.createTime ? new Date(Number(d.createTime.seconds) * 1000).toISOString() : "",
          ]),
          "datasets-table",
        ),
      );
    });
  }

  function show(d: Dataset): void {
    const s = d.stats;
    detail.replaceChildren(
      h("h3", {}, d.name),
      table(
        ["", ""],
        [
          ["traces", formatNumber(s?.traceCount ?? 0n)],
          ["train / eval", `${s?.trainCount} / ${s?.evalCount}`],
          ["steps (min / avg / max)", `${s?.minSteps} / ${formatNumber(s?.avgSteps ?? 0, 3)} / ${s?.maxSteps}`],
          ["categories", counts(s?.categoryCounts)],
          ["sources", counts(s?.sourceCounts)],
          ["filter", d.filter || "-"],
          ["build", d.buildId],
        ],
        "dataset-stats",
      ),
      exportBox(d),
      manifestBox(d),
    );
  }

  body.append(buildForm(() => void load()), list, detail);
  void load();
  return el;
}

function counts(map: Record<string, bigint> | undefined): string {
  return Object.entries(map ?? {}).map(([k, v]) => `${k || "(none)"}: ${v}`).join(", ") || "-";
}

function buildForm(done: () => void): HTMLElement {
  const name = input("dataset_name", "console");
  const version = input("version", "v1");
  const strategy = select("strategy", ["LATEST", "RANDOM", "STRATIFIED"], "LATEST");
  const filter = input("filter");
  const limit = input("limit", "0", "number");
  const stratify = input("stratify_by", "category");
  const evalFraction = input("eval_fraction", "0.1", "number");
  evalFraction.step = "0.01";
  const seed = input("seed", "0", "number");
  const result = h("div", { "data-testid": "build-result" });
  const button = writeButton("Build", () =>
    void guard(result, async () => {
      const d = await datasets.buildDataset({
        datasetName: name.value,
        version: version.value,
        strategy: SelectionStrategy[strategy.value as keyof typeof SelectionStrategy],
        filter: filter.value,
        limit: Number(limit.value),
        stratifyBy: strategy.value === "STRATIFIED" ? stratify.value : "",
        evalFraction: Number(evalFraction.value),
        seed: BigInt(seed.value || "0"),
      });
      result.replaceChildren(h("p", {}, `built ${d.name}: ${d.stats?.trainCount} train / ${d.stats?.evalCount} eval`));
      done();
    }), "build-button");
  return h(
    "div",
    { class: "form" },
    h("h3", {}, "Build a dataset"),
    field("name", name),
    field("version", version),
    field("strategy", strategy),
    field("filter", filter),
    field("limit (0: all)", limit),
    field("stratify by", stratify),
    field("eval fraction", evalFraction),
    field("seed", seed),
    button,
    result,
  );
}

function exportBox(d: Dataset): HTMLElement {
  const format = select("format", ["TRACE", "TUNIX_SFT", "MESSAGES", "PROMPT_COMPLETION"], "TUNIX_SFT");
  const result = h("div", { "data-testid": "export-result" });
  const button = h("button", {
    onclick: () =>
      void guard(result, async () => {
        result.replaceChildren("exporting…");
        const parts: Uint8Array[] = [];
        let summary;
        for await (const r of exports.exportDataset({ dataset: d.name, format: ExportFormat[format.value as keyof typeof ExportFormat] })) {
          if (r.payload.case === "chunk") parts.push(r.payload.value.data);
          else if (r.payload.case === "summary") summary = r.payload.value;
        }
        const blob = new Blob(parts as BlobPart[], { type: "application/jsonl" });
        const digest = crypto.subtle
          ? [...new Uint8Array(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()))]
              .map((b) => b.toString(16).padStart(2, "0"))
              .join("")
          : "";
        const ok = digest !== "" && digest === summary?.sha256;
        const link = h("a", { href: URL.createObjectURL(blob), download: `${d.datasetKey}.${format.value.toLowerCase()}.jsonl` }, "Download");
        result.replaceChildren(
          h(
            "p",
            { "data-testid": "export-checksum", class: ok ? "ok" : "error" },
            `${formatNumber(summary?.rowCount ?? 0n)} rows, ${formatNumber(blob.size)} bytes, sha256 ${summary?.sha256.slice(0, 16)}…: `,
            ok ? "checksum verified" : digest ? "CHECKSUM MISMATCH" : "not checked (needs https or localhost)",
          ),
          link,
        );
      }),
  }, "Export JSONL");
  return h("div", {}, h("h3", {}, "Export"), format, button, result);
}

function manifestBox(d: Dataset): HTMLElement {
  const out = h("pre", { "data-testid": "manifest" });
  const button = h("button", {
    onclick: () => void guard(out, async () => void (out.textContent = (await exports.getTrainingManifest({ dataset: d.name })).yaml)),
  }, "Generate manifest");
  return h("div", {}, h("h3", {}, "Training manifest"), button, out);
}
