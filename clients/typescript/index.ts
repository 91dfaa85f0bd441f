// A typed client of the motorpool API: openapi-fetch over the types openapi-typescript
// generates from openapi.yaml (schema.d.ts; `make generate` rewrites it).
import createClient, { type Client, type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema.js";

export type { components, paths, operations } from "./schema.js";
export type Problem = components["schemas"]["Problem"];

export interface MotorpoolClient {
  /** Every operation, typed: api.GET("/vehicles", { params: { query: { limit: 20 } } }). */
  readonly api: Client<paths>;
  /** The access token sent as `Authorization: Bearer …` from now on; undefined for none. */
  setAccessToken(token: string | undefined): void;
}

export function createMotorpoolClient(baseUrl: string, fetchImpl?: typeof fetch): MotorpoolClient {
  let accessToken: string | undefined;
  const api = createClient<paths>({ baseUrl, fetch: fetchImpl });
  const bearer: Middleware = {
    onRequest({ request }) {
      if (accessToken !== undefined) {
        request.headers.set("Authorization", `Bearer ${accessToken}`);
      }
      return request;
    },
  };
  api.use(bearer);
  return {
    api,
    setAccessToken(token) {
      accessToken = token;
    },
  };
}

/** Whether an error body is the service's application/problem+json (RFC 9457). */
export function isProblem(body: unknown): body is Problem {
  if (typeof body !== "object" || body === null) {
    return false;
  }
  const p = body as Record<string, unknown>;
  return typeof p.type === "string" && typeof p.title === "string" && typeof p.status === "number";
}

/** The problem's words for a person: its detail, each field error, else its title. */
export function describeProblem(p: Problem): string {
  const fields = (p.errors ?? []).map((e) => `${e.field}: ${e.message}`);
  return [p.detail ?? p.title, ...fields].join("; ");
}

/** Seconds to wait before retrying, from a 429's or a 503's Retry-After; undefined without one. */
export function retryAfterSeconds(response: Response): number | undefined {
  const v = response.headers.get("Retry-After");
  if (v === null || !/^\d+$/.test(v)) {
    return undefined;
  }
  return Number(v);
}
