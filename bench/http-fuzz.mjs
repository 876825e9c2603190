// HTTP fuzz of a gateway, longer than the test's: a real gateway in this process (a real ledger
// in a temporary directory, verification off) with a fake node registered, then `--requests`
// seeded mutated requests (@gbt/gateway/testing's fuzzer: raw sockets and fetch, broken escapes,
// bad headers and framing, JSON mutations of a chat body, with and without the key and the admin
// token). Prints the answers by status class and the failures; exits 1 on any 5xx, malformed
// error body, crash, or a normal chat that fails afterwards.
//
//   npx tsc -b packages/gateway && node bench/http-fuzz.mjs [--requests 20000] [--seed 1]
//     [--concurrency 8] [--timeout-ms 2000]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseGatewayConfig, startGatewayServer } from "@gbt/gateway";
import { gatewayFuzzRoutes, runHttpFuzz, startFakeNode } from "@gbt/gateway/testing";
import pino from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "20000" },
    seed: { type: "string", default: "1" },
    concurrency: { type: "string", default: "8" },
    "timeout-ms": { type: "string", default: "2000" },
  },
});
const requests = Number(values.requests);
const seed = Number(values.seed);
const ADMIN = "admin-token-for-the-fuzz-0123456789";

let crashes = 0;
const crashed = (error) => {
  crashes++;
  console.error("crash:", error);
};
process.on("uncaughtException", crashed);
process.on("unhandledRejection", crashed);

const dir = mkdtempSync(join(tmpdir(), "gbt-http-fuzz-"));
const gateway = await startGatewayServer({
  config: parseGatewayConfig({
    port: 0,
    allowPrivateNodes: true,
    verification: { enabled: false },
    routing: { rampUpDays: 0, heartbeatIntervalMs: 600_000 },
  }),
  dataDir: dir,
  account: privateKeyToAccount(generatePrivateKey()),
  adminToken: ADMIN,
  logger: pino({ level: "silent" }),
});
const account = gateway.accounts.createAccount({ name: "fuzz", initialMicro: 1_000_000_000_000 });
const key = gateway.accounts.createApiKey(account.id, "fuzz");
const node = await startFakeNode({ capacity: 64 });
const registered = await node.register(gateway.url);
if (registered.status !== 200) throw new Error(`the fake node did not register: ${registered.status}`);
const chatBody = { model: "fake-model", messages: [{ role: "user", content: "hi" }], max_tokens: 8 };

const started = performance.now();
const report = await runHttpFuzz({
  url: gateway.url,
  seed,
  requests,
  concurrency: Number(values.concurrency),
  timeoutMs: Number(values["timeout-ms"]),
  target: {
    routes: gatewayFuzzRoutes({
      nodeAddress: node.account.address,
      accountId: account.id,
      keyId: key.id,
      instanceId: [...gateway.pool.instances()][0]?.id,
    }),
    tokens: [key.key, ADMIN],
    jsonBody: chatBody,
    jsonPath: "/v1/chat/completions",
  },
});
const seconds = (performance.now() - started) / 1000;

// Afterwards: lift what the fuzz set, then a normal chat, nothing held, nothing in flight.
for (const [kind, id] of [
  ["keys", key.id],
  ["accounts", account.id],
]) {
  const reset = await fetch(`${gateway.url}/v1/gateway/limits/${kind}/${id}`, {
    method: "DELETE",
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  await reset.arrayBuffer();
}
const after = await fetch(`${gateway.url}/v1/chat/completions`, {
  method: "POST",
  headers: { "content-type": "application/json", authorization: `Bearer ${key.key}` },
  body: JSON.stringify(chatBody),
});
await after.arrayBuffer();
const deadline = Date.now() + 5_000;
const settledNow = () =>
  gateway.holds.heldMicro(account.id) === 0 &&
  [...gateway.pool.instances()].every((instance) => instance.inFlight === 0);
while (!settledNow() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
const held = gateway.holds.heldMicro(account.id);
const inFlight = [...gateway.pool.instances()].reduce((sum, instance) => sum + instance.inFlight, 0);

await node.close();
await gateway.close();
rmSync(dir, { recursive: true, force: true });

console.log(
  `http fuzz: seed ${seed}, ${report.requests} requests in ${seconds.toFixed(1)} s (concurrency ${values.concurrency})`,
);
for (const [kind, count] of Object.entries(report.byClass)) console.log(`  ${kind}: ${count}`);
console.log(
  `  no response (closed by the server or refused by the client): ${report.noResponse}, timed out: ${report.timedOut}`,
);
console.log(`  after: chat ${after.status}, held ${held} µ, in flight ${inFlight}`);
for (const problem of report.problems) console.log(`  problem: ${problem}`);
if (report.problemCount > report.problems.length)
  console.log(`  … ${report.problemCount - report.problems.length} more problems`);
console.log(`5xx: ${report.fiveXX}, crashes: ${crashes}`);
const failed =
  report.fiveXX > 0 ||
  report.problemCount > 0 ||
  crashes > 0 ||
  after.status !== 200 ||
  held !== 0 ||
  inFlight !== 0;
process.exit(failed ? 1 : 0);
