import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { digestOf, type SignedObject } from "@gbt/protocol";
import Database from "better-sqlite3";
import OpenAI from "openai";
import { type Hex, recoverAddress } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyJson, runCli, TEST_OWNER, tempHome } from "../../testing/run-cli.js";
import {
  type GbtProcess,
  type ServeProcess,
  startGbtProcess,
  startServeProcess,
} from "../../testing/serve-process.js";

const MODEL = "gbt-test-tiny";
const ask = [{ role: "user" as const, content: "Hello through the pool." }];

interface NodeView {
  id: string;
  url: string;
  status: string;
  breaker: string;
  inFlight: number;
  health: { successes: number; failures: number };
}

describe("a gateway over three real nodes (real processes on loopback)", () => {
  let gatewayHome: string;
  let gateway: GbtProcess;
  let gatewayUrl: string;
  let adminToken: string;
  const nodes: ServeProcess[] = [];
  let client: OpenAI;
  let accountId: string;

  const nodesView = async (): Promise<NodeView[]> => {
    const response = await fetch(`${gatewayUrl}/v1/gateway/nodes`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    expect(response.status).toBe(200);
    return ((await response.json()) as { data: NodeView[] }).data;
  };

  beforeAll(async () => {
    gatewayHome = await tempHome("gbt-gw-");
    // No ramp-up here: three brand-new nodes would otherwise start at 25% of their capacity.
    await mkdir(join(gatewayHome, "config"), { recursive: true });
    await writeFile(
      join(gatewayHome, "config", "gateway.json"),
      JSON.stringify({ allowPrivateNodes: true, routing: { rampUpDays: 0 } }),
    );
    gateway = await startGbtProcess(["gateway", "serve", "--port", "0", "--json", "--log-level", "warn"], {
      GBT_HOME: gatewayHome,
    });
    gatewayUrl = String(gateway.first.url);
    adminToken = readFileSync(join(gatewayHome, "data", "gateway", "admin-token"), "utf8").trim();
    const homes = await Promise.all([0, 1, 2].map(() => tempHome("gbt-pool-node-")));
    for (const home of homes)
      expect((await runCli(["setup", "--yes", "--owner", TEST_OWNER], { GBT_HOME: home })).exitCode).toBe(0);
    nodes.push(
      ...(await Promise.all(
        homes.map((home) =>
          startServeProcess(["--gateway", gatewayUrl, "--threads", "1"], { GBT_HOME: home }),
        ),
      )),
    );
    const until = Date.now() + 30_000;
    while ((await nodesView()).filter((node) => node.status === "active").length < 3) {
      if (Date.now() > until) throw new Error("the nodes did not register");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const created = onlyJson<{ account: { id: string }; key: { key: string } }>(
      (await runCli(["gateway", "keys", "create", "e2e", "--json"], { GBT_HOME: gatewayHome })).stdout,
    );
    accountId = created.account.id;
    client = new OpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: created.key.key, maxRetries: 0 });
  }, 120_000);

  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.stop("SIGKILL")));
    await gateway?.stop("SIGKILL");
  });

  it("serves the official openai client, streamed and whole, and settles each request from a valid receipt", async () => {
    expect((await client.models.list()).data.map((m) => m.id)).toEqual([MODEL]);
    const whole = await client.chat.completions.create({
      model: MODEL,
      messages: ask,
      max_tokens: 12,
      seed: 3,
    });
    expect(whole.choices[0]?.message.content?.length).toBeGreaterThan(0);
    expect(whole.usage?.completion_tokens).toBe(12);
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: ask,
      max_tokens: 20,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(usage?.completion_tokens).toBe(20);

    const check = await fetch(`${gatewayUrl}/v1/gateway/ledger/check`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    expect(await check.json()).toMatchObject({ ok: true, totalMicro: 0 });
    const db = new Database(join(gatewayHome, "data", "gateway", "gateway.db"), { readonly: true });
    try {
      const rows = db
        .prepare(
          "SELECT completion_tokens, receipt_status, provider_credit, receipt_json, gateway_signature FROM usage_records WHERE account_id = ? ORDER BY created_at",
        )
        .all(accountId) as {
        completion_tokens: number;
        receipt_status: string;
        provider_credit: number;
        receipt_json: string;
        gateway_signature: Hex;
      }[];
      expect(rows.map((row) => [row.completion_tokens, row.receipt_status])).toEqual([
        [12, "valid"],
        [20, "valid"],
      ]);
      const gatewayAddress = (
        (await (await fetch(`${gatewayUrl}/v1/gateway/info`)).json()) as { address: string }
      ).address;
      for (const row of rows) {
        expect(row.provider_credit).toBeGreaterThan(0);
        // The gateway's countersignature is over the node's receipt.
        const receipt = JSON.parse(row.receipt_json) as SignedObject;
        expect(await recoverAddress({ hash: digestOf(receipt), signature: row.gateway_signature })).toBe(
          gatewayAddress,
        );
      }
    } finally {
      db.close();
    }
  });

  it("shows the pool with gbt gateway nodes, and refuses a wrong admin token", async () => {
    const json = await runCli(["gateway", "nodes", "--url", gatewayUrl, "--json"], { GBT_HOME: gatewayHome });
    expect(json.exitCode).toBe(0);
    const pool = onlyJson<{ url: string; status: string; eligible: boolean }[]>(json.stdout);
    expect(pool.map((node) => node.url).sort()).toEqual(nodes.map((node) => node.url).sort());
    expect(pool.every((node) => node.status === "active" && node.eligible)).toBe(true);
    // Trust is shown with the pool: real nodes report no model digests, so none is "verified" yet.
    expect(pool.every((node) => (node as { tier?: string }).tier === "community")).toBe(true);
    const table = await runCli(["gateway", "nodes", "--url", gatewayUrl], { GBT_HOME: gatewayHome });
    expect(table.stdout).toMatch(/^NODE\s+URL\s+MODELS\s+STATUS\s+BREAKER.*TIER\s+REP\s+ELIGIBLE/);
    expect(table.stdout.trim().split("\n")).toHaveLength(4);
    const refused = await runCli(["gateway", "nodes", "--url", gatewayUrl, "--json"], {
      GBT_HOME: gatewayHome,
      GBT_GATEWAY_ADMIN_TOKEN: "not-the-admin-token-at-all",
    });
    expect(refused.exitCode).toBe(4);
    expect(onlyJson<{ error: { code: string } }>(refused.stdout).error.code).toBe("UNAUTHORIZED");
  });

  it("spreads a concurrent burst over the three nodes", async () => {
    const before = await nodesView();
    await Promise.all(
      Array.from({ length: 9 }, () =>
        client.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 48 }),
      ),
    );
    const after = await nodesView();
    const served = after.map((node) => {
      const was = before.find((b) => b.id === node.id);
      return node.health.successes - (was?.health.successes ?? 0);
    });
    expect(served.reduce((a, b) => a + b, 0)).toBe(9);
    // Least-loaded routing over three equal nodes: none idle, none with more than half the burst.
    for (const count of served) {
      expect(count).toBeGreaterThanOrEqual(1);
      expect(count).toBeLessThanOrEqual(5);
    }
  });

  it("fails requests over to the other nodes when a node is killed, with no client error", async () => {
    const victim = nodes[0] as ServeProcess;
    await victim.stop("SIGKILL");
    // The gateway has not missed a heartbeat yet, so it still routes to the dead node first.
    expect((await nodesView()).find((node) => node.url === victim.url)?.status).toBe("active");
    // Twelve at once: more than the two live nodes take (capacity 4 each); the rest wait for a slot.
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        client.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 8, stream: i % 2 === 0 }),
      ),
    );
    expect(answers).toHaveLength(12);
    const dead = (await nodesView()).find((node) => node.url === victim.url);
    expect(dead?.health.failures).toBeGreaterThanOrEqual(1);
    const check = await fetch(`${gatewayUrl}/v1/gateway/ledger/check`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    expect(await check.json()).toMatchObject({ ok: true });
  });
});

describe("gbt up", () => {
  it("starts a network, answers through it, and stops cleanly on SIGINT", async () => {
    const home = await tempHome("gbt-up-");
    const up = await startGbtProcess(["up", "--port", "0", "--nodes", "2", "--json"], { GBT_HOME: home });
    try {
      expect(up.first).toMatchObject({ event: "up", model: MODEL, firstRequest: { tokens: 24 } });
      expect(up.first.nodes).toHaveLength(2);
      expect(up.first.balance).toBeLessThan(5);
      const client = new OpenAI({
        baseURL: String(up.first.baseUrl),
        apiKey: String(up.first.apiKey),
        maxRetries: 0,
      });
      const answer = await client.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 5 });
      expect(answer.usage?.completion_tokens).toBe(5);
      // `gbt gateway nodes` finds gbt up's admin token by itself.
      const pool = await runCli(
        ["gateway", "nodes", "--url", String(up.first.baseUrl).replace(/\/v1$/, ""), "--json"],
        {
          GBT_HOME: home,
        },
      );
      expect(onlyJson<unknown[]>(pool.stdout)).toHaveLength(2);
      expect(await up.stop("SIGINT")).toBe(0);
      expect(up.lines()).toEqual([{ event: "stopped" }]);
    } finally {
      await up.stop("SIGKILL");
    }
  }, 120_000);
});
