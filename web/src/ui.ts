// What every panel shares: errors shown where they happened, the caller's role,
// and the token dialog that an UNAUTHENTICATED answer opens.

import { h } from "./dom";
import { describe, isUnauthenticated, setToken } from "./rpc";

export const role = { canWrite: true, who: "" };

/** Disables a button that would start something the caller's role may not. */
export function writeButton(label: string, onclick: () => void, testid = ""): HTMLButtonElement {
  const button = h("button", { onclick, ...(testid ? { "data-testid": testid } : {}) }, label);
  if (!role.canWrite) {
    button.disabled = true;
    button.title = `${role.who}: a reader's token can look, not start or change anything`;
  }
  return button;
}

export function errorBox(err: unknown): HTMLElement {
  const { title, fields } = describe(err);
  return h(
    "div",
    { class: "error", "data-testid": "error" },
    h("strong", {}, title),
    fields.length ? h("ul", {}, ...fields.slice(0, 50).map((f) => h("li", {}, f))) : null,
  );
}

/** Runs `work`; an error replaces `target`'s content, and asks for a token when it
 * is UNAUTHENTICATED. */
export async function guard(target: HTMLElement, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (err) {
    target.replaceChildren(errorBox(err));
    if (isUnauthenticated(err)) askForToken();
  }
}

let asking = false;

export function askForToken(): void {
  if (asking) return;
  asking = true;
  const field = h("input", { type: "password", name: "token", autocomplete: "off" });
  const dialog = h(
    "dialog",
    { "data-testid": "token-dialog" },
    h(
      "form",
      { method: "dialog" },
      h("p", {}, "This server needs a bearer token. It is kept for this tab only."),
      field,
      h("button", { type: "submit" }, "Use token"),
    ),
  );
  dialog.addEventListener("close", () => {
    setToken(field.value.trim());
    asking = false;
    location.reload();
  });
  document.body.append(dialog);
  dialog.showModal();
}
