import { formatNumber, h, section, table } from "../dom";
import { server } from "../rpc";
import { guard, role } from "../ui";
import type { ServerInfo } from "../gen/tunixrt/v1/server_pb";

export async function loadRole(): Promise<ServerInfo | undefined> {
  try {
    const info = await server.getServerInfo({});
    role.canWrite = !info.authEnabled || info.callerRole === "writer";
    role.who = info.callerName ? `${info.callerName} (${info.callerRole})` : "";
    return info;
  } catch {
    return undefined;
  }
}

export function serverPanel(): HTMLElement {
  const [el, body] = section("Server", "panel-server");
  void guard(body, async () => {
    const info = await server.getServerInfo({});
    const l = info.limits;
    body.replaceChildren(
      table(
        ["", ""],
        [
          ["version", info.serverVersion],
          ["database", info.database],
          ["JAX backend", info.jaxBackend || "-"],
          ["runtime", info.runtimeStatus],
          ["auth", info.authEnabled ? `on; you are ${role.who || "?"}` : "off"],
          ["devices", info.devices.map((d) => `${d.platform}:${d.id} ${d.kind}`).join(", ") || "-"],
          ...Object.entries(info.libraryVersions).map(([k, v]): [string, string] => [k, v]),
        ],
        "server-info",
      ),
      h("h3", {}, "Presets"),
      table(
        ["name", "parameters", "context", "description"],
        info.presets.map((p) => [p.name, formatNumber(p.parameterCount), p.maxContext, p.description]),
      ),
      h("h3", {}, "Limits"),
      table(
        ["limit", "value"],
        l
          ? [
              ["largest request (MiB)", l.maxReceiveMessageMb],
              ["largest response (MiB)", l.maxSendMessageMb],
              ["longest stream (s)", l.maxStreamS],
              ["concurrent runs", l.maxConcurrentRuns],
              ["queued runs", l.maxQueuedRuns],
              ["page size", l.maxPageSize],
            ]
          : [],
      ),
    );
  });
  return el;
}
