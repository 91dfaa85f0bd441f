// Example: sign in, list vehicles, and handle a problem+json error and a 429.
//
//   npx tsc -p clients/typescript && node clients/typescript/dist/example.js
//
// MOTORPOOL_URL (default http://localhost:8080), MOTORPOOL_EMAIL and MOTORPOOL_PASSWORD name
// the service and an account on it (registered first when it does not exist).
import { createMotorpoolClient, describeProblem, isProblem, retryAfterSeconds } from "./index.js";

const baseUrl = process.env.MOTORPOOL_URL ?? "http://localhost:8080";
const email = process.env.MOTORPOOL_EMAIL ?? "ada@example.com";
const password = process.env.MOTORPOOL_PASSWORD ?? "correct horse battery";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const { api, setAccessToken } = createMotorpoolClient(baseUrl);

  const created = await api.POST("/users", { body: { email, name: "Ada Lovelace", password } });
  if (created.error && created.response.status !== 409) {
    throw new Error(`register: ${describeProblem(created.error)}`);
  }

  const login = await api.POST("/auth/login", { body: { email, password } });
  if (login.error) {
    // 401 wrong credentials, 429 locked out: the problem says which.
    throw new Error(`sign in (${login.response.status}): ${describeProblem(login.error)}`);
  }
  setAccessToken(login.data.accessToken);
  console.log(`signed in as ${email}; the token expires in ${login.data.expiresIn}s`);

  // Every page of vehicles, following nextCursor; a 429 waits Retry-After and tries again.
  let cursor: string | undefined;
  let count = 0;
  for (;;) {
    const page = await api.GET("/vehicles", { params: { query: { limit: 100, cursor } } });
    if (page.response.status === 429) {
      const wait = retryAfterSeconds(page.response) ?? 1;
      console.log(`limited (${page.response.headers.get("RateLimit") ?? "no RateLimit field"}); waiting ${wait}s`);
      await sleep(wait * 1000);
      continue;
    }
    if (page.error) {
      throw new Error(`list vehicles: ${describeProblem(page.error)}`);
    }
    for (const v of page.data.items) {
      console.log(`vehicle ${v.id}: ${v.year} ${v.make} ${v.model} (${v.licensePlate}), owner ${v.userId}`);
      count++;
    }
    if (page.data.nextCursor == null) {
      break;
    }
    cursor = page.data.nextCursor;
  }
  console.log(`${count} vehicles`);

  // A problem+json error: a vehicle that does not exist.
  const missing = await api.GET("/vehicles/{id}", { params: { path: { id: 2 ** 53 - 1 } } });
  if (missing.error) {
    console.log(`as expected, ${missing.response.status}: ${describeProblem(missing.error)}`);
  }

  // Bad input gets 400 naming each field.
  const bad = await api.POST("/vehicles", {
    body: { make: "", model: "Corolla", year: 1700, vin: "short", licensePlate: "AB-123-CD" },
  });
  if (bad.error && isProblem(bad.error)) {
    console.log(`as expected, ${bad.response.status}: ${describeProblem(bad.error)}`);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
