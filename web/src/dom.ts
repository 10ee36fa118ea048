// Small DOM helpers: the console has no framework (a small bundle, nothing to keep up).

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | boolean | ((event: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (typeof value === "function") el.addEventListener(key.replace(/^on/, ""), value);
    else if (value === true) el.setAttribute(key, "");
    else if (value !== false) el.setAttribute(key, value);
  }
  append(el, ...children);
  return el;
}

export function append(el: Element, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function table(head: string[], rows: Child[][], testid = ""): HTMLTableElement {
  return h(
    "table",
    testid ? { "data-testid": testid } : {},
    h("thead", {}, h("tr", {}, ...head.map((c) => h("th", {}, c)))),
    h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((c) => h("td", {}, c))))),
  );
}

export function field(label: string, input: HTMLElement): HTMLLabelElement {
  return h("label", {}, h("span", {}, label), input);
}

export function input(name: string, value = "", type = "text"): HTMLInputElement {
  return h("input", { name, value, type });
}

export function select(name: string, options: string[], value = ""): HTMLSelectElement {
  const el = h("select", { name }, ...options.map((o) => h("option", { value: o }, o)));
  el.value = value || options[0] || "";
  return el;
}

/** A panel section whose content a refresh replaces. */
export function section(title: string, testid: string): [HTMLElement, HTMLElement] {
  const body = h("div", { class: "body" });
  return [h("section", { "data-testid": testid }, h("h2", {}, title), body), body];
}

export function formatNumber(value: number | bigint, digits = 4): string {
  if (typeof value === "bigint") return value.toLocaleString("en");
  return Number.isInteger(value) ? value.toLocaleString("en") : value.toPrecision(digits);
}
