// Job verification: signed jobs verified per second on one core through the agent's whole gate
// (`verifyJobEnvelope`: JSON parse, envelope and message schema, domain, chain, audience, time
// window, payload hash, EIP-712 signature recovery (native), owner check, lifetime, allowlist type,
// strict params, policy, and the replay store's SQLite transaction on a temp database). N jobs with
// distinct ids and rising nonces are signed first, by 2 owner keys, then verified in turn in one
// thread; each pass uses a fresh database so no job is a duplicate. Target: ≥ 2,000/s.
// Prints a table, writes bench/results/agent-verify.json.
//
//   npx tsc -b packages/agent && node bench/agent-verify.mjs [--jobs 2000] [--passes 3]
import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  ALLOWLIST_VERSION,
  createAllowlist,
  createReplayStore,
  openAgentDatabase,
  parseJobBody,
  verifyJobEnvelope,
} from "@gbt/agent";
import { signObject } from "@gbt/protocol";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: "2000" },
    passes: { type: "string", default: "3" },
  },
});
const count = Number(values.jobs);
const passes = Number(values.passes);
const TARGET = 2000;
const CHAIN_ID = 84532;

const node = privateKeyToAccount(generatePrivateKey());
const owners = [privateKeyToAccount(generatePrivateKey()), privateKeyToAccount(generatePrivateKey())];
const allowlist = createAllowlist();
const payloads = [
  ["model.pull", { model: "llama3.1:8b" }],
  ["config.set", { key: "backend.threads", value: 8 }],
  ["benchmark.run", { mode: "micro", genTokens: 128 }],
  ["status.read", {}],
];

process.stderr.write(`signing ${count} jobs…\n`);
const now = Math.floor(Date.now() / 1000);
const jobs = [];
for (let i = 0; i < count; i++) {
  const owner = owners[i % owners.length];
  const [type, payload] = payloads[i % payloads.length];
  const signed = await signObject(owner, {
    kind: "Job",
    chainId: CHAIN_ID,
    message: {
      jobId: randomUUID(),
      node: node.address,
      issuer: owner.address,
      type,
      nonce: i + 1,
      notBefore: now,
      expiresAt: now + 540,
      allowlistVersion: ALLOWLIST_VERSION,
    },
    payload,
  });
  jobs.push(Buffer.from(JSON.stringify(signed)));
}

/** Runs every job through `verify` on a fresh database, `passes` times after a warm-up; the best rate. */
async function rate(verify) {
  let best = 0;
  for (let pass = -1; pass < passes; pass++) {
    const dir = mkdtempSync(join(tmpdir(), "gbt-bench-agent-"));
    const db = openAgentDatabase(join(dir, "agent.db"));
    const ctx = {
      node: node.address,
      chainId: CHAIN_ID,
      owners: owners.map((o) => o.address),
      allowlist,
      replay: createReplayStore(db),
    };
    const start = performance.now();
    for (const body of jobs) await verify(body, ctx);
    const perSecond = jobs.length / ((performance.now() - start) / 1000);
    db.close();
    rmSync(dir, { recursive: true, force: true });
    if (pass >= 0) best = Math.max(best, perSecond);
  }
  return best;
}

const rows = [];
const whole = await rate(async (body, ctx) => {
  const verified = await verifyJobEnvelope(parseJobBody(body), ctx);
  if (verified.duplicate) throw new Error("unexpected duplicate");
});
rows.push({ step: "parseJobBody + verifyJobEnvelope (whole gate)", perSecond: whole, target: TARGET });
const parsed = jobs.map((body) => parseJobBody(body));
let k = 0;
rows.push({
  step: "  of which: replay claim (SQLite transaction)",
  perSecond: await rate((_body, ctx) => {
    const job = parsed[k++ % parsed.length];
    ctx.replay.claim({ ...job.message, digest: job.signature.slice(0, 66) });
  }),
});

console.log(`job verification, ${count} jobs, best of ${passes} passes, one thread`);
console.log(`${"step".padEnd(48)}${"jobs/s".padStart(10)}${"µs each".padStart(10)}  target`);
for (const r of rows) {
  const met = r.target === undefined ? "" : `≥ ${r.target}/s: ${r.perSecond >= r.target ? "met" : "NOT MET"}`;
  console.log(
    `${r.step.padEnd(48)}${r.perSecond.toFixed(0).padStart(10)}${(1e6 / r.perSecond).toFixed(0).padStart(10)}  ${met}`,
  );
}

const dir = fileURLToPath(new URL("./results/", import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(
  `${dir}agent-verify.json`,
  `${JSON.stringify(
    {
      bench: "agent-verify",
      date: new Date().toISOString(),
      command: `node bench/agent-verify.mjs --jobs ${count} --passes ${passes}`,
      node: process.version,
      cpu: cpus()[0]?.model ?? "unknown",
      targetPerSecond: TARGET,
      met: whole >= TARGET,
      rows: rows.map((r) => ({ ...r, microsecondsEach: 1e6 / r.perSecond })),
    },
    null,
    2,
  )}\n`,
);
