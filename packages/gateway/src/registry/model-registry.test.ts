import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type ModelManifest,
  parseModelManifest,
  type SignedModelManifest,
  signModelManifest,
} from "@gbt/protocol";
import Database from "better-sqlite3";
import pino from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseGatewayConfig } from "../gateway-config.js";
import { gatewayMigrations, openGatewayDatabase } from "../gateway-database.js";
import { type GatewayServer, startGatewayServer } from "../gateway-server.js";
import { type FakeNode, startFakeNode } from "../testing/fake-node.js";
import { createModelRegistry } from "./model-registry.js";
import { ModelRegistryStore } from "./model-registry-store.js";
import { migrateModelRegistry } from "./registry-database.js";

const ADMIN = "admin-token-for-registry-tests-0123";
const publisher = privateKeyToAccount(generatePrivateKey());
let dir: string;
let gateway: GatewayServer | undefined;
const nodes: FakeNode[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gbt-registry-"));
});
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((node) => node.close()));
  await gateway?.close(1_000);
  gateway = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const start = async (config: Record<string, unknown> = {}) => {
  gateway = await startGatewayServer({
    config: parseGatewayConfig({
      port: 0,
      // The test nodes listen on loopback.
      allowPrivateNodes: true,
      ...config,
    }),
    dataDir: dir,
    account: privateKeyToAccount(generatePrivateKey()),
    adminToken: ADMIN,
    logger: pino({ level: "silent" }),
    registry: createModelRegistry(),
  });
  return gateway;
};

function manifest(name = "fake-model", version = "1.0.0", sha = "a"): ModelManifest {
  return parseModelManifest({
    name,
    version,
    artifacts: [{ path: "model.gguf", sha256: sha.repeat(64), size: 100 }],
    license: { spdx: "MIT" },
    runtime: { format: "gguf", quantization: "F32", backends: ["embedded"] },
    vramBand: { minMiB: 0, maxMiB: 64 },
    contextWindow: 512,
    intendedUse: { summary: "tests" },
    publisher: publisher.address,
    createdAt: "2026-01-01T00:00:00Z",
  });
}

const sign = (m: ModelManifest, chainId = 31_337, account = publisher) =>
  signModelManifest(account, { manifest: m, chainId });

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${url}/v1/registry/models`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return {
    status: response.status,
    headers: response.headers,
    // biome-ignore lint/suspicious/noExplicitAny: tests read deep into untyped JSON answers.
    body: (await response.json()) as Record<string, any>,
  };
}

const admin = (url: string, path: string, body: unknown = {}, token = ADMIN) =>
  fetch(`${url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });

describe("the model registry", () => {
  it("registers a signed manifest once: same content is idempotent, other content is 409", async () => {
    const { url } = await start();
    const signed = await sign(manifest());
    const first = await post(url, signed, { "idempotency-key": "ci-run-1" });
    expect(first.status).toBe(201);
    expect(first.headers.get("idempotency-key")).toBe("ci-run-1");
    expect(first.body).toMatchObject({
      created: true,
      model: { name: "fake-model", version: "1.0.0", status: "pending" },
    });
    const again = await post(url, signed);
    expect(again.status).toBe(200);
    expect(again.body.created).toBe(false);
    const changed = await post(url, await sign(manifest("fake-model", "1.0.0", "b")));
    expect(changed.status).toBe(409);
    expect(changed.body.error.code).toBe("conflict");

    const one = await fetch(`${url}/v1/registry/models/fake-model/1.0.0`);
    const model = (await one.json()) as { signed: SignedModelManifest; manifestHash: string };
    expect(model.signed).toEqual(JSON.parse(JSON.stringify(signed)));
    const list = (await (await fetch(`${url}/v1/registry/models`)).json()) as { data: unknown[] };
    expect(list.data).toHaveLength(1);
    expect((await fetch(`${url}/v1/registry/models/fake-model/9.9.9`)).status).toBe(404);
  });

  it("refuses hostile submissions with specific errors", async () => {
    const { url } = await start();
    const signed = await sign(manifest());
    const tampered = structuredClone(signed);
    (tampered.payload.artifacts[0] as { sha256: string }).sha256 = "c".repeat(64);
    expect((await post(url, tampered)).body.error.code).toBe("payload_hash_mismatch");
    // Another key signs the same document with itself as publisher, then the signature is moved
    // onto the real publisher's envelope: it recovers to the wrong address.
    const intruder = privateKeyToAccount(generatePrivateKey());
    const intruderSigned = await sign({ ...manifest(), publisher: intruder.address }, 31_337, intruder);
    const forged = await post(url, { ...signed, signature: intruderSigned.signature });
    expect([forged.status, forged.body.error.code]).toEqual([401, "signature_invalid"]);
    expect((await post(url, await sign(manifest(), 1))).body.error.code).toBe("wrong_chain");
    const notJson = await post(url, "{not json");
    expect([notJson.status, notJson.body.error.code]).toEqual([400, "invalid_json"]);
    const huge = await post(url, { ...signed, padding: "x".repeat(400 * 1024) });
    expect(huge.status).toBe(413);
    const badDoc = await post(url, { kind: "ModelManifest", nope: true });
    expect(badDoc.status).toBe(400);
    // A traversal path cannot even be signed as a complete manifest; sent raw it is refused by the schema.
    const traversal = structuredClone(signed) as unknown as { payload: { artifacts: { path: string }[] } };
    (traversal.payload.artifacts[0] as { path: string }).path = "../../etc/passwd";
    expect((await post(url, traversal)).status).toBeGreaterThanOrEqual(400);
    expect((await fetch(`${url}/v1/registry/models/%E0%A4%A/1`)).status).toBe(400);
    expect((await fetch(`${url}/v1/registry/models?status=weird`)).status).toBe(400);
    expect((await fetch(`${url}/v1/registry/models`, { method: "DELETE" })).status).toBe(405);
    const list = (await (await fetch(`${url}/v1/registry/models`)).json()) as { data: unknown[] };
    expect(list.data).toHaveLength(0);
  });

  it("keeps a name to its first publisher, and limits submitters to registry.publishers when set", async () => {
    const { url } = await start({ registry: { publishers: [publisher.address] } });
    expect((await post(url, await sign(manifest()))).status).toBe(201);
    const stranger = privateKeyToAccount(generatePrivateKey());
    const strangers = await post(
      url,
      await sign({ ...manifest("fake-model", "2.0.0"), publisher: stranger.address }, 31_337, stranger),
    );
    expect([strangers.status, strangers.body.error.code]).toEqual([403, "unknown_signer"]);
    await gateway?.close(1_000);
    gateway = undefined;
    // Same database, open registry: the stranger still cannot add versions under the publisher's name.
    const open = await start();
    const squat = await post(
      open.url,
      await sign({ ...manifest("fake-model", "2.0.0"), publisher: stranger.address }, 31_337, stranger),
    );
    expect([squat.status, squat.body.error.code]).toEqual([409, "conflict"]);
    expect(squat.body.error.message).toMatch(/belongs to another publisher/);
    expect(
      (
        await post(
          open.url,
          await sign({ ...manifest("own-model"), publisher: stranger.address }, 31_337, stranger),
        )
      ).status,
    ).toBe(201);
  });

  it("lets only an admin approve and delist, in order", async () => {
    const { url } = await start();
    await post(url, await sign(manifest()));
    const path = "/v1/registry/models/fake-model/1.0.0";
    expect((await admin(url, `${path}/approve`, {}, "wrong-token")).status).toBe(401);
    const approved = await admin(url, `${path}/approve`, { reason: "reviewed" });
    expect(await approved.json()).toMatchObject({ status: "approved", statusReason: "reviewed" });
    expect((await admin(url, `${path}/approve`)).status).toBe(200);
    expect((await admin(url, `${path}/delist`)).status).toBe(200);
    const again = await admin(url, `${path}/approve`);
    expect(again.status).toBe(409);
    const listed = (await (await fetch(`${url}/v1/registry/models?status=delisted`)).json()) as {
      data: { status: string }[];
    };
    expect(listed.data.map((m) => m.status)).toEqual(["delisted"]);
  });

  it("with registry.requireApproved, nodes register and serve only approved models", async () => {
    const { url } = await start({ registry: { requireApproved: true } });
    const node = await startFakeNode({ models: ["fake-model", "other-model"] });
    nodes.push(node);
    const refused = await node.register(url);
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("policy_denied");

    await post(url, await sign(manifest()));
    expect((await node.register(url)).status).toBe(403); // pending is not approved
    await admin(url, "/v1/registry/models/fake-model/1.0.0/approve");
    expect((await node.register(url)).status).toBe(200);
    expect(gateway?.pool.live()[0]?.models).toEqual(["fake-model"]);

    await admin(url, "/v1/registry/models/fake-model/1.0.0/delist");
    expect((await node.heartbeat(url)).status).toBe(200);
    expect(gateway?.pool.live()[0]?.models).toEqual([]);
  });

  it("migrates idempotently beside the gateway's own schema, and a digest must match an approved artifact", () => {
    const db = openGatewayDatabase(join(dir, "gateway.db"));
    try {
      migrateModelRegistry(db);
      migrateModelRegistry(db);
      const store = new ModelRegistryStore(db);
      // The registry keeps its own version: the gateway's is still its own latest.
      expect(db.pragma("user_version", { simple: true })).toBe(gatewayMigrations.length);
      expect(store.list()).toEqual([]);
    } finally {
      db.close();
    }
    const raw = new Database(join(dir, "gateway.db"));
    raw.prepare("UPDATE registry_meta SET value = 99 WHERE key = 'schema_version'").run();
    raw.close();
    const reopened = openGatewayDatabase(join(dir, "gateway.db"));
    try {
      expect(() => migrateModelRegistry(reopened)).toThrow(/newer than this gbt/);
    } finally {
      reopened.close();
    }
  });

  it("matches a node's sha256 digest against approved artifacts", async () => {
    const db = openGatewayDatabase(join(dir, "policy.db"));
    try {
      const store = new ModelRegistryStore(db);
      const signed = await sign(manifest());
      store.submit(signed as SignedModelManifest);
      store.setStatus("fake-model", "1.0.0", "approve");
      expect(store.isApproved({ id: "fake-model" })).toBe(true);
      expect(store.isApproved({ id: "fake-model", digest: `sha256:${"a".repeat(64)}` })).toBe(true);
      expect(store.isApproved({ id: "fake-model", digest: `sha256:${"b".repeat(64)}` })).toBe(false);
      expect(store.isApproved({ id: "other" })).toBe(false);
    } finally {
      db.close();
    }
  });
});
