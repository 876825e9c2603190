import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  Ledger,
  listDeadLetters,
  openGatewayDatabase,
  SettlementJournal,
  settlementJournalDir,
} from "@gbt/gateway";
import { type FakeNode, startFakeNode } from "@gbt/gateway/testing";
import { seededRandom } from "@gbt/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyJson, runCli, tempHome } from "../../testing/run-cli.js";
import { type GbtProcess, startGbtProcess } from "../../testing/serve-process.js";

const MODEL = "fake-model";
const KILLS = 5;
const WORKERS = 8;

/** One consumer loop: requests (whole and streamed, alternately) until told to stop or the gateway dies. */
async function consumerLoop(
  url: string,
  key: string,
  stop: { now: boolean },
  seen: { ok: string[]; failed: number },
  streamEvery: number,
): Promise<void> {
  let n = 0;
  while (!stop.now) {
    const stream = n++ % streamEvery === 0;
    try {
      const response = await fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({
          model: MODEL,
          stream,
          max_tokens: 8,
          messages: [{ role: "user", content: "hi" }],
        }),
      });
      // A 200 counts once its whole body arrived: what the consumer was served in full.
      const body = await response.text();
      const id = response.headers.get("x-request-id");
      if (response.status === 200 && id !== null && (!stream || body.includes("[DONE]"))) seen.ok.push(id);
      else seen.failed += 1;
    } catch {
      // The gateway was killed under this request.
      seen.failed += 1;
      return;
    }
  }
}

describe("kill -9 of the gateway under load (real processes on loopback)", () => {
  let home: string;
  let node: FakeNode;
  let key: string;
  const seen = { ok: [] as string[], failed: 0 };
  const reregistered: number[] = [];

  const startGateway = async (): Promise<GbtProcess> => {
    const gateway = await startGbtProcess(
      ["gateway", "serve", "--port", "0", "--json", "--log-level", "warn"],
      {
        GBT_HOME: home,
      },
    );
    // The node's link notices the new gateway and registers again.
    reregistered.push((await node.register(String(gateway.first.url))).status);
    return gateway;
  };

  beforeAll(async () => {
    home = await tempHome("gbt-crash-");
    await mkdir(join(home, "config"), { recursive: true });
    // The fake node listens on loopback; no ramp-up for a brand-new node.
    await writeFile(
      join(home, "config", "gateway.json"),
      JSON.stringify({ allowPrivateNodes: true, routing: { rampUpDays: 0 } }),
    );
    const created = await runCli(["gateway", "keys", "create", "alice", "--json"], { GBT_HOME: home });
    expect(created.exitCode).toBe(0);
    key = onlyJson<{ key: { key: string } }>(created.stdout).key.key;
    node = await startFakeNode({ models: [MODEL], capacity: 64, tokens: 4 });
  });

  afterAll(async () => {
    await node?.close();
  });

  it("loses no served request and settles none twice across 5 kills at seeded-random moments", async () => {
    const random = seededRandom(20_261_204);
    for (let kill = 0; kill < KILLS; kill++) {
      const gateway = await startGateway();
      const url = String(gateway.first.url);
      const stop = { now: false };
      const before = seen.ok.length;
      const loops = Array.from({ length: WORKERS }, (_, i) =>
        consumerLoop(url, key, stop, seen, 2 + (i % 3)),
      );
      // A moment 200–1200 ms into the load, from the seeded generator: the same moments every run.
      await new Promise((resolve) => setTimeout(resolve, 200 + Math.floor(random() * 1_000)));
      await gateway.stop("SIGKILL");
      stop.now = true;
      await Promise.all(loops);
      expect(seen.ok.length).toBeGreaterThan(before);
    }
    // The last start settles what the journal holds before it serves; the node registers again
    // and is served; a graceful stop settles the rest.
    const gateway = await startGateway();
    const stop = { now: false };
    const before = seen.ok.length;
    const loop = consumerLoop(String(gateway.first.url), key, stop, seen, 2);
    while (seen.ok.length < before + 10) await new Promise((resolve) => setTimeout(resolve, 10));
    stop.now = true;
    await loop;
    expect(await gateway.stop("SIGTERM")).toBe(0);
    expect(reregistered).toEqual(Array(KILLS + 1).fill(200));

    const db = openGatewayDatabase(join(home, "data", "gateway", "gateway.db"));
    try {
      const ledger = new Ledger(db);
      expect(ledger.checkInvariants()).toMatchObject({
        ok: true,
        duplicateRequestIds: [],
        mismatchedUsage: [],
      });
      const settled = new Map(
        (
          db
            .prepare(
              "SELECT request_id, COUNT(*) AS n FROM ledger_transactions WHERE kind = 'usage' GROUP BY 1",
            )
            .all() as { request_id: string; n: number }[]
        ).map((row) => [row.request_id, row.n]),
      );
      const lost = seen.ok.filter((id) => !settled.has(id));
      const doubled = [...settled.values()].filter((n) => n > 1).length;
      process.stderr.write(
        `crash test: ${KILLS} kills, ${seen.ok.length} 200s seen, ${settled.size} settled, ${lost.length} lost, ${doubled} doubled\n`,
      );
      expect(lost).toEqual([]);
      expect(doubled).toBe(0);
      expect(listDeadLetters(db)).toEqual([]);
      // Nothing is left to replay.
      const journal = new SettlementJournal(db, { dir: settlementJournalDir(join(home, "data", "gateway")) });
      expect(journal.recover()).toEqual([]);
      journal.close();
    } finally {
      db.close();
    }
    const letters = await runCli(["gateway", "dead-letters", "--json"], { GBT_HOME: home });
    expect(onlyJson(letters.stdout)).toEqual({ deadLetters: [], requeued: [] });
  }, 120_000);
});
