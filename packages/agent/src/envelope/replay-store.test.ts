import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GbtError } from "@gbt/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type AgentDatabase, openAgentDatabase } from "../agent-database.js";
import { createReplayStore, type JobClaim, type ReplayStore } from "./replay-store.js";

const issuer = "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A";
const claimOf = (jobId: string, nonce: number, digest = `0x${"aa".repeat(32)}`): JobClaim => ({
  jobId,
  issuer,
  nonce,
  digest: digest as `0x${string}`,
  type: "status.read",
});

describe("createReplayStore", () => {
  let dir: string;
  let db: AgentDatabase;
  let store: ReplayStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "gbt-agent-replay-"));
    db = openAgentDatabase(join(dir, "agent.db"));
    store = createReplayStore(db, () => 1_000);
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("claims a new job, then reports its redelivery as a duplicate", () => {
    expect(store.claim(claimOf("a", 1))).toEqual({ duplicate: false });
    const again = store.claim(claimOf("a", 1));
    expect(again).toMatchObject({
      duplicate: true,
      stored: { jobId: "a", state: "accepted", receivedAt: 1_000 },
    });
  });

  it("throws REPLAYED for the same id with another digest, STALE_NONCE for an old nonce", () => {
    store.claim(claimOf("a", 5));
    expect(() => store.claim(claimOf("a", 6, `0x${"bb".repeat(32)}`))).toThrowError(
      expect.objectContaining({ code: "REPLAYED" }),
    );
    expect(() => store.claim(claimOf("b", 5))).toThrowError(expect.objectContaining({ code: "STALE_NONCE" }));
    expect(store.get("b")).toBeUndefined();
    expect(store.lastNonce(issuer)).toBe(5);
  });

  it("keeps what it saw across a reopen of the database", () => {
    store.claim(claimOf("a", 3));
    store.finish("a", "succeeded", { ok: true });
    db.close();
    db = openAgentDatabase(join(dir, "agent.db"));
    store = createReplayStore(db);
    expect(store.get("a")).toMatchObject({ state: "succeeded", result: { ok: true } });
    expect(() => store.claim(claimOf("c", 2))).toThrowError(expect.objectContaining({ code: "STALE_NONCE" }));
    expect(() => store.finish("missing", "failed", null)).toThrow(GbtError);
  });
});
