import { expect } from "vitest";
import type { Guard } from "../../src/guard.js";
import { Client } from "./http.js";

/** A guard that refuses with what it was handed: the request's method, URL and one header. */
export const echoRequest: Guard = (_session, request) =>
  new Response(
    request ? `${request.method} ${request.url} ${request.headers.get("x-probe")}` : "no request",
    { status: 403 },
  );

/** Asks `path` of a server whose route is behind `echoRequest`, and checks what the guard saw. */
export async function expectGuardSawRequest(base: string, path: string): Promise<void> {
  const reply = await new Client(base).request(path, {
    method: "DELETE",
    headers: { "x-probe": "probe-value" },
  });
  expect(reply.status).toBe(403);
  expect(reply.text).toBe(`DELETE ${base}${path} probe-value`);
}
