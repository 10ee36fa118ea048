// The tunix-rt console: the same gRPC contract as the SDK and the CLI, in a page.

import { h } from "./dom";
import { setToken, token } from "./rpc";
import { datasetsPanel } from "./panels/datasets";
import { generatePanel } from "./panels/generate";
import { runsPanel } from "./panels/runs";
import { loadRole, serverPanel } from "./panels/server";
import { tracesPanel } from "./panels/traces";
import { askForToken, role } from "./ui";

const TABS = ["Server", "Traces", "Generate", "Datasets", "Runs"] as const;
type Tab = (typeof TABS)[number];

async function main(): Promise<void> {
  const info = await loadRole();
  const presets = info?.presets.map((p) => p.name) ?? ["tiny-gemma3"];
  const panels: Record<Tab, () => HTMLElement> = {
    Server: serverPanel,
    Traces: tracesPanel,
    Generate: generatePanel,
    Datasets: datasetsPanel,
    Runs: () => runsPanel(presets),
  };
  const content = h("main", {});
  const nav = h("nav", {});
  const show = (tab: Tab) => {
    location.hash = tab.toLowerCase();
    nav.querySelectorAll("button").forEach((b) => b.classList.toggle("active", b.textContent === tab));
    content.replaceChildren(panels[tab]());
  };
  for (const tab of TABS) nav.append(h("button", { onclick: () => show(tab), "data-testid": `tab-${tab.toLowerCase()}` }, tab));
  const who = h(
    "span",
    { class: "who", "data-testid": "who" },
    info?.authEnabled ? `${role.who || "no token"}${role.canWrite ? "" : " — read only"}` : "auth off",
    " ",
    token() ? h("button", { onclick: () => (setToken(""), location.reload()) }, "Forget token") : h("button", { onclick: askForToken }, "Token…"),
  );
  document.body.replaceChildren(h("header", {}, h("h1", {}, "tunix-rt"), nav, who), content);
  const initial = TABS.find((t) => t.toLowerCase() === location.hash.slice(1)) ?? "Server";
  show(initial);
  if (info === undefined) askForToken();
}

void main();
