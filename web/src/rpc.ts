// The contract's own services over gRPC-Web, on the port that served this page.

import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { BadRequestSchema } from "./gen/google/rpc/error_details_pb";
import { DatasetService } from "./gen/tunixrt/v1/dataset_pb";
import { ExportService } from "./gen/tunixrt/v1/export_pb";
import { ServerService } from "./gen/tunixrt/v1/server_pb";
import { TraceService } from "./gen/tunixrt/v1/trace_pb";
import { TrainingService } from "./gen/tunixrt/v1/training_pb";

// The bearer token lives for this tab only (sessionStorage), never in a cookie.
const TOKEN_KEY = "tunixrt.token";

export function token(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

export function setToken(value: string): void {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

const bearer: Interceptor = (next) => async (req) => {
  const t = token();
  if (t) req.header.set("authorization", `Bearer ${t}`);
  return next(req);
};

const transport = createGrpcWebTransport({
  baseUrl: location.origin,
  interceptors: [bearer],
  useBinaryFormat: true,
});

export const traces = createClient(TraceService, transport);
export const datasets = createClient(DatasetService, transport);
export const exports = createClient(ExportService, transport);
export const training = createClient(TrainingService, transport);
export const server = createClient(ServerService, transport);

/** What went wrong, for a person: the status, the message and each field violation. */
export function describe(err: unknown): { title: string; fields: string[] } {
  const e = ConnectError.from(err);
  const fields = e.findDetails(BadRequestSchema).flatMap((d) =>
    d.fieldViolations.map((v) => `${v.field}: ${v.description}`),
  );
  return { title: `${Code[e.code]}: ${e.rawMessage}`, fields };
}

export function isUnauthenticated(err: unknown): boolean {
  return ConnectError.from(err).code === Code.Unauthenticated;
}
