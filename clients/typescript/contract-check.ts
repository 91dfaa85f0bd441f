// Compile-time checks of what the generated types say about headers and bodies: tsc --strict
// (make check-clients) fails if openapi.yaml's declarations stop producing them.
import type { components, paths } from "./schema.js";

type Responses = components["responses"];

// The headers the service sends only sometimes (rate limits, the cache's, the request id)
// are optional: a response without them type-checks.
export const getUser200Headers: paths["/users/{id}"]["get"]["responses"][200]["headers"] = {};
export const listVehicles200Headers: paths["/vehicles"]["get"]["responses"][200]["headers"] = {};
export const notModifiedHeaders: Responses["NotModified"]["headers"] = {};
export const notFoundHeaders: Responses["NotFound"]["headers"] = {};

// A 304 has no body.
export const notModifiedContent: Responses["NotModified"]["content"] = undefined;

// Retry-After is always sent with a 429 and a 503, and Location with a 201.
// @ts-expect-error Retry-After is required
export const tooManyRequestsHeaders: Responses["TooManyRequests"]["headers"] = {};
// @ts-expect-error Retry-After is required
export const unavailableHeaders: Responses["ServiceUnavailable"]["headers"] = {};
// @ts-expect-error Location is required
export const createdHeaders: paths["/vehicles"]["post"]["responses"][201]["headers"] = {};
