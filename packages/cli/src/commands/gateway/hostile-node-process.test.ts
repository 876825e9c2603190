/**
 * The hostile-node suite against a real `gbt gateway serve` process (the in-process suite is
 * packages/gateway/src/hostile-node.test.ts): hostile nodes on loopback, a consumer whose account
 * can afford only three credit holds at once, and the gateway's own RSS read from /proc. If any
 * hostile answer left a hold behind, the account would be frozen (402) long before the end; if any
 * left a lease, the pool would show it in flight; if a node's bytes were buffered, the RSS would
 * show it.
 */
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type FakeNode, type FakeNodeFaults, startFakeNode } from "@gbt/gateway/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyJson, runCli, tempHome } from "../../testing/run-cli.js";
import { type GbtProcess, startGbtProcess } from "../../testing/serve-process.js";

const GIB = 1024 * 1024 * 1024;
let home: string;
let gateway: GbtProcess;
let url: string;
let key: string;
let adminToken: string;
const nodes: FakeNode[] = [];

/** The gateway process's resident memory, bytes. */
function rss(): number {
  const line = readFileSync(`/proc/${gateway.child.pid}/status`, "utf8")
    .split("\n")
    .find((text) => text.startsWith("VmRSS:"));
  return Number(line?.replace(/\D+/g, "")) * 1024;
}

const chat = (model: string, stream: boolean) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model, stream, max_tokens: 16, messages: [{ role: "user", content: "hi" }] }),
  }).then(async (response) => ({
    status: response.status,
    // A node that cuts its answer has the consumer's cut too (the gateway cannot complete it).
    body: await response.text().catch(() => "(cut by the gateway, as the node cut it)"),
  }));

/** Resolves once the gateway has settled every finished request (its ledger check waits for that). */
const settled = async () => {
  const response = await fetch(`${url}/v1/gateway/ledger/check`, {
    headers: { authorization: `Bearer ${adminToken}` },
  });
  expect(response.status).toBe(200);
};

const inFlight = async () => {
  const response = await fetch(`${url}/v1/gateway/nodes`, {
    headers: { authorization: `Bearer ${adminToken}` },
  });
  const { data } = (await response.json()) as { data: { inFlight: number }[] };
  return data.reduce((sum, node) => sum + node.inFlight, 0);
};

beforeAll(async () => {
  home = await tempHome("gbt-hostile-gw-");
  await mkdir(join(home, "config"), { recursive: true });
  // A hold is 16 tokens × 0.09375 credits = 1.5 credits: the 5.00 credits of a new account cover three.
  await writeFile(
    join(home, "config", "gateway.json"),
    JSON.stringify({
      allowPrivateNodes: true,
      prices: { "*": { inputPerMillion: 0, outputPerMillion: 93_750 } },
      verification: { enabled: false },
      routing: {
        rampUpDays: 0,
        maxRetries: 0,
        responseTimeoutMs: 500,
        stallTimeoutMs: 500,
        maxResponseBytes: 1024 * 1024,
        maxEventBytes: 64 * 1024,
      },
    }),
  );
  gateway = await startGbtProcess(["gateway", "serve", "--port", "0", "--json", "--log-level", "warn"], {
    GBT_HOME: home,
  });
  url = String(gateway.first.url);
  adminToken = readFileSync(join(home, "data", "gateway", "admin-token"), "utf8").trim();
  const created = await runCli(["gateway", "keys", "create", "alice", "--json"], { GBT_HOME: home });
  key = (onlyJson(created.stdout) as { key: { key: string } }).key.key;
});

afterAll(async () => {
  await Promise.all(nodes.map((node) => node.close()));
  await gateway?.stop();
});

describe("hostile nodes against a real gateway process", () => {
  it("refuses metadata, internal and non-http node URLs, even with allowPrivateNodes", async () => {
    const node = await startFakeNode();
    nodes.push(node);
    const refused = [
      "http://169.254.169.254",
      "http://[fe80::1]:80",
      "http://metadata.google.internal",
      "file:///etc/passwd",
    ];
    for (const target of refused) expect((await node.register(url, { url: target })).status).toBe(400);
  });

  it("after 21 hostile answers (7 behaviours × 3) no hold, no lease and no node's bytes are left in the gateway", async () => {
    const behaviours: [string, FakeNodeFaults, boolean][] = [
      ["huge-whole", { hugeBody: GIB }, false],
      ["huge-event", { unterminatedStream: GIB }, true],
      ["stall-whole", { stallAfterHeaders: true }, false],
      ["stall-stream", { stallAfterHeaders: true }, true],
      ["cut-400", { status: 400, cutBody: true }, false],
      ["redirect", { redirectTo: "http://169.254.169.254/latest/meta-data/" }, false],
      ["drop", { dropBeforeHeaders: true }, true],
    ];
    const before = rss();
    let peak = before;
    for (const [model, faults, stream] of behaviours) {
      const node = await startFakeNode({ models: [model], faults });
      nodes.push(node);
      expect((await node.register(url)).status).toBe(200);
      for (let i = 0; i < 3; i++) {
        const answer = await chat(model, stream);
        // Never the gateway's own failure, never a frozen account.
        expect(answer.status, `${model}: ${answer.body.slice(0, 200)}`).not.toBe(500);
        expect(answer.status, model).not.toBe(402);
        peak = Math.max(peak, rss());
        // A started answer's hold stays until its (zero) debit is written: wait for that, not longer.
        await settled();
      }
      await expect.poll(inFlight).toBe(0);
    }
    // The bytes of the two 1 GiB answers were never held: the caps are 1 MiB and 64 KiB.
    console.log(
      `gateway RSS: ${(before / 2 ** 20).toFixed(1)} MiB before, peak +${((peak - before) / 2 ** 20).toFixed(1)} MiB`,
    );
    expect(peak - before).toBeLessThan(64 * 1024 * 1024);
    // Every hold came back: an honest node now serves the account, which could afford only three.
    const honest = await startFakeNode({ models: ["honest"] });
    nodes.push(honest);
    expect((await honest.register(url)).status).toBe(200);
    for (let i = 0; i < 3; i++) {
      expect((await chat("honest", i % 2 === 0)).status).toBe(200);
      await settled();
    }
    await expect.poll(inFlight).toBe(0);
  });
});
