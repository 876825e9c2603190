import { randomUUID } from "node:crypto";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { GbtError } from "../../../errors.js";
import { digestOf, signObject } from "../../../signed-object.js";
import { agentOutcomeStatus } from "../job-outcome.js";
import { jobEnvelopeHash } from "../job-result.js";
import { createJobTypeRegistry } from "../job-type-registry.js";
import { createAgentClient } from "./agent-client.js";

const NODE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

/** A fetch that records each request and answers from `answer`. */
function fakeFetch(answer: (url: string, init: RequestInit) => Response | Promise<Response>) {
  const calls: { url: string; method: string; body: string | undefined }[] = [];
  const fetchFn = (async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = String(input);
    calls.push({ url, method: init.method ?? "GET", body: init.body as string | undefined });
    return answer(url, init);
  }) as typeof fetch;
  return { fetchFn, calls };
}

const json = (status: number, value: unknown) =>
  new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json" } });

async function caught(promise: Promise<unknown>): Promise<GbtError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof GbtError) return error;
    throw error;
  }
  throw new Error("expected a GbtError");
}

describe("agent client", () => {
  it("posts the job's exact text to /agent/jobs and answers the outcome, rejected ones included", async () => {
    const outcome = { jobId: "j1", state: "rejected", code: "UNKNOWN_SIGNER", message: "no" };
    const { fetchFn, calls } = fakeFetch(() => json(401, outcome));
    const client = createAgentClient({ url: "http://127.0.0.1:8787", fetch: fetchFn });
    const body = '{ "kind": "Job" }';
    const answered = await client.submitJob({ job: body });
    expect(JSON.stringify(answered)).toBe(JSON.stringify(outcome));
    expect(calls).toEqual([{ url: "http://127.0.0.1:8787/agent/jobs", method: "POST", body }]);
  });

  it("relays through the gateway's node routes", async () => {
    const { fetchFn, calls } = fakeFetch(() => json(400, { jobId: "a/b", state: "rejected" }));
    const client = createAgentClient({ url: "http://gw.example", relay: { node: NODE }, fetch: fetchFn });
    await client.submitJob({ job: "{}" });
    await client.getJobStatus({ jobId: "a/b" });
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      `POST http://gw.example/v1/nodes/${NODE}/jobs`,
      `GET http://gw.example/v1/nodes/${NODE}/jobs/a%2Fb`,
    ]);
    await expect(client.getAllowlist()).rejects.toMatchObject({ code: "USAGE" });
  });

  it("turns answers without an outcome into the GbtError they mean", async () => {
    const answers: Record<string, Response> = {
      "/agent/jobs/unknown": json(404, {
        error: { message: "This node has no job unknown.", code: "not_found" },
      }),
    };
    const { fetchFn } = fakeFetch(
      (url) => answers[new URL(url).pathname] ?? new Response("nope", { status: 500 }),
    );
    const client = createAgentClient({ url: "http://127.0.0.1:1", fetch: fetchFn });
    expect((await caught(client.getJobStatus({ jobId: "unknown" }))).code).toBe("NOT_FOUND");
    const broken = await caught(client.submitJob({ job: "{}" }));
    expect(broken.code).toBe("INVALID_OBJECT");
    expect(broken.details).toMatchObject({ status: 500, body: "nope" });

    const relayed = fakeFetch(() =>
      json(401, { error: { message: "altered", code: "payload_hash_mismatch" } }),
    );
    const gateway = createAgentClient({ url: "http://gw", relay: { node: NODE }, fetch: relayed.fetchFn });
    expect((await caught(gateway.submitJob({ job: "{}" }))).code).toBe("PAYLOAD_HASH_MISMATCH");
    const missing = fakeFetch(() => json(404, { error: { message: "unknown node", code: "unknown_node" } }));
    const lost = createAgentClient({ url: "http://gw", relay: { node: NODE }, fetch: missing.fetchFn });
    expect((await caught(lost.getJobStatus({ jobId: "x" }))).code).toBe("NOT_FOUND");

    const noAgent = fakeFetch(() => json(404, { error: { message: "No route", code: "not_found" } }));
    const plain = createAgentClient({ url: "http://127.0.0.1:1", fetch: noAgent.fetchFn });
    expect((await caught(plain.submitJob({ job: "{}" }))).message).toContain("serves no job endpoint");
    expect((await caught(plain.getAllowlist())).code).toBe("NOT_FOUND");
  });

  it("checks the published allowlist's shape", async () => {
    const published = { version: 1, node: NODE, chainId: 31337, types: [] };
    const good = createAgentClient({ url: "http://n", fetch: fakeFetch(() => json(200, published)).fetchFn });
    expect(await good.getAllowlist()).toEqual(published);
    const bad = createAgentClient({
      url: "http://n",
      fetch: fakeFetch(() => json(200, { types: 1 })).fetchFn,
    });
    expect((await caught(bad.getAllowlist())).code).toBe("INVALID_OBJECT");
  });

  it("names transport failures: unreachable, cancelled, not a URL", async () => {
    const down = createAgentClient({
      url: "http://127.0.0.1:1",
      fetch: (async () => {
        throw new TypeError("fetch failed");
      }) as typeof fetch,
    });
    expect((await caught(down.getAllowlist())).code).toBe("NODE_UNREACHABLE");
    const controller = new AbortController();
    controller.abort();
    expect((await caught(down.getAllowlist({ signal: controller.signal }))).code).toBe("INTERRUPTED");
    const nonsense = createAgentClient({ url: "not a url", fetch: fakeFetch(() => json(200, {})).fetchFn });
    expect((await caught(nonsense.getAllowlist())).code).toBe("USAGE");
  });

  it("runJob polls a running job until it is final", async () => {
    let polls = 0;
    const { fetchFn } = fakeFetch((_url, init) => {
      if (init.method === "POST") return json(200, { jobId: "j", state: "running", states: ["received"] });
      polls += 1;
      return json(200, polls < 3 ? { jobId: "j", state: "running" } : { jobId: "j", state: "failed" });
    });
    const client = createAgentClient({ url: "http://n", fetch: fetchFn, pollIntervalMs: 1 });
    const seen: string[] = [];
    const job = { message: { jobId: "j" } } as Parameters<typeof client.runJob>[0]["job"];
    const final = await client.runJob({ job, onProgress: (o) => seen.push(o.state) });
    expect(final.state).toBe("failed");
    expect(seen).toEqual(["running", "running", "running"]);
  });

  it("accepts only a JobResult that answers the exact envelope sent, and no success without one", async () => {
    const owner = privateKeyToAccount(generatePrivateKey());
    const node = privateKeyToAccount(generatePrivateKey());
    const now = Math.floor(Date.now() / 1000);
    const job = await signObject(owner, {
      kind: "Job",
      chainId: 31337,
      message: {
        jobId: randomUUID(),
        node: node.address,
        issuer: owner.address,
        type: "config.set",
        nonce: 1,
        notBefore: now - 5,
        expiresAt: now + 300,
        allowlistVersion: 1,
      },
      payload: { key: "backend.capacity", value: 2 },
    });
    const answer = (envelope: unknown, state: "succeeded" | "rejected") =>
      signObject(node, {
        kind: "JobResult",
        chainId: 31337,
        message: {
          jobId: job.message.jobId,
          node: node.address,
          issuer: owner.address,
          jobHash: digestOf(job),
          envelopeHash: jobEnvelopeHash(envelope),
          state,
          auditHash: `0x${"cd".repeat(32)}`,
          issuedAt: now,
        },
        payload: null,
      });
    const client = (outcome: unknown) =>
      createAgentClient({ url: "http://n", fetch: fakeFetch(() => json(200, outcome)).fetchFn });
    const text = JSON.stringify(job);
    const exact = {
      jobId: job.message.jobId,
      state: "succeeded",
      result: await answer(JSON.parse(text), "succeeded"),
    };
    await expect(client(exact).submitJob({ job: text })).resolves.toMatchObject({ state: "succeeded" });
    await expect(client(exact).runJob({ job })).resolves.toMatchObject({ state: "succeeded" });
    // The node's signed rejection of a corrupted copy (other params, same message and digest).
    const corrupted = { ...JSON.parse(text), payload: { key: "backend.capacity", value: 200 } };
    const forCopy = {
      jobId: job.message.jobId,
      state: "rejected",
      result: await answer(corrupted, "rejected"),
    };
    const copied = await caught(client(forCopy).submitJob({ job: text }));
    expect(copied.code).toBe("INVALID_OBJECT");
    expect(copied.message).toMatch(/envelopeHash differs/);
    const unsigned = await caught(
      client({ jobId: job.message.jobId, state: "succeeded" }).submitJob({ job }),
    );
    expect(unsigned.message).toMatch(/without a signed JobResult/);
  });
});

describe("agent outcomes and job types", () => {
  it("answers executed jobs 200, auth rejections 401, other rejections 400", () => {
    expect(agentOutcomeStatus({ state: "rolled_back", code: "INTERNAL" })).toBe(200);
    expect(agentOutcomeStatus({ state: "rejected", code: "EXPIRED" })).toBe(401);
    expect(agentOutcomeStatus({ state: "rejected", code: "INVALID_PARAMS" })).toBe(400);
    expect(agentOutcomeStatus({ state: "rejected" })).toBe(400);
  });

  it("parses a job's parameters under its type's schema, naming the path of a problem", () => {
    const registry = createJobTypeRegistry();
    expect(registry.parseParams("logs.tail", { lines: 20 })).toEqual({ lines: 20 });
    expect(() => registry.parseParams("logs.tail", { lines: 501 })).toThrow(/at \$\.lines/);
    expect(() => registry.parseParams("shell.exec", {})).toThrow(
      expect.objectContaining({ code: "UNKNOWN_JOB_TYPE" }),
    );
  });
});
