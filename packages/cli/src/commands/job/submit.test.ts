import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { verifyObject } from "@gbt/protocol";
import type { Address } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyJson, runCli, tempHome } from "../../testing/run-cli.js";
import { type ServeProcess, startServeProcess } from "../../testing/serve-process.js";

interface Outcome {
  jobId?: string;
  state: string;
  code?: string;
  output?: unknown;
  result?: unknown;
}

const MODEL = "gbt-test-tiny";

describe("gbt job submit to a real gbt serve (real processes, loopback)", () => {
  let home: string;
  let node: ServeProcess;
  let ownerKeyFile: string;
  let strangerKeyFile: string;
  let nodeAddress: Address;
  let chainId: number;
  const env = () => ({ GBT_HOME: home });

  /** `gbt job create TYPE …` piped into `gbt job submit - --json`. */
  async function createAndSubmit(
    type: string,
    keyFile: string,
    extra: string[] = [],
  ): Promise<{ job: string; exitCode: number; outcome: Outcome }> {
    const created = await runCli(["job", "create", type, "--key-file", keyFile, ...extra], env());
    expect(created.exitCode, created.stderr).toBe(0);
    const submitted = await submit(created.stdout);
    return { job: created.stdout, ...submitted };
  }

  async function submit(job: string): Promise<{ exitCode: number; outcome: Outcome }> {
    const result = await runCli(["job", "submit", "-", "--node-url", node.url, "--json"], env(), 60_000, job);
    return { exitCode: result.exitCode, outcome: onlyJson<Outcome>(result.stdout) };
  }

  function chat(model = MODEL): Promise<Response> {
    return fetch(`${node.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model, max_tokens: 1, messages: [{ role: "user", content: "Hi" }] }),
    });
  }

  beforeAll(async () => {
    home = await tempHome("gbt-job-submit-");
    const ownerKey = generatePrivateKey();
    ownerKeyFile = join(home, "owner.key");
    strangerKeyFile = join(home, "stranger.key");
    await writeFile(ownerKeyFile, `${ownerKey}\n`, { mode: 0o600 });
    await writeFile(strangerKeyFile, `${generatePrivateKey()}\n`, { mode: 0o600 });
    const owner = privateKeyToAccount(ownerKey).address;
    const setup = await runCli(["setup", "--yes", "--owner", owner], env());
    expect(setup.exitCode, setup.stderr).toBe(0);
    const config = JSON.parse(await readFile(join(home, "config", "config.json"), "utf8")) as {
      node: { address: Address; chainId: number; owners: string[] };
    };
    expect(config.node.owners).toEqual([owner]);
    nodeAddress = config.node.address;
    chainId = config.node.chainId;
    node = await startServeProcess(["--capacity", "1", "--threads", "1"], env());
  }, 120_000);

  afterAll(async () => {
    await node?.stop("SIGKILL");
  });

  it("runs an owner's status.read, answers duplicates with the stored outcome, and rejects strangers", async () => {
    const first = await createAndSubmit("status.read", ownerKeyFile);
    expect(first.exitCode).toBe(0);
    expect(first.outcome.state).toBe("succeeded");
    const result = await verifyObject(first.outcome.result as never, {
      kind: "JobResult",
      chainId,
      allowedSigners: [nodeAddress],
    });
    expect(result.message).toMatchObject({ node: nodeAddress, state: "succeeded" });
    expect(JSON.stringify(first.outcome.output)).toContain(MODEL);
    // No nvidia-smi on this machine: the fixed gpu.query command reports no GPUs instead of failing.
    expect(first.outcome.output).toMatchObject({ gpus: null, server: { draining: false } });
    // The agent says who it is with what it accepts, so clients bind jobs to the right node and chain.
    const published = (await (await fetch(`${node.url}/agent/allowlist`)).json()) as {
      node: string;
      chainId: number;
      types: { type: string }[];
    };
    expect(published).toMatchObject({ node: nodeAddress, chainId });
    expect(published.types.map((t) => t.type)).toContain("status.read");

    const again = await submit(first.job);
    expect(again.exitCode).toBe(0);
    expect(again.outcome).toEqual(first.outcome);

    const stranger = await createAndSubmit("status.read", strangerKeyFile);
    expect(stranger.exitCode).toBe(4);
    expect(stranger.outcome).toMatchObject({ state: "rejected", code: "UNKNOWN_SIGNER" });

    const status = await runCli(
      ["job", "status", String(first.outcome.jobId), "--node-url", node.url, "--json"],
      env(),
    );
    expect(status.exitCode, status.stderr).toBe(0);
    expect(onlyJson<Outcome>(status.stdout)).toEqual(first.outcome);

    const unknown = await runCli(
      ["job", "status", "00000000-0000-4000-8000-000000000000", "--node-url", node.url, "--json"],
      env(),
    );
    expect(unknown.exitCode).toBe(8);
  }, 120_000);

  it("node.drain makes chat completions 503 draining until node.resume", async () => {
    expect((await chat()).status).toBe(200);
    const drain = await createAndSubmit("node.drain", ownerKeyFile);
    expect(drain.outcome.state, JSON.stringify(drain.outcome)).toBe("succeeded");
    const refused = await chat();
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).not.toBeNull();
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("draining");
    const health = (await (await fetch(`${node.url}/healthz`)).json()) as { status: string };
    expect(health.status).toBe("draining");

    const resume = await createAndSubmit("node.resume", ownerKeyFile);
    expect(resume.outcome.state, JSON.stringify(resume.outcome)).toBe("succeeded");
    expect((await chat()).status).toBe(200);
  }, 120_000);

  it("model.pull serves a generated test model, service.restart keeps serving, unsafe names are refused", async () => {
    const pull = await createAndSubmit("model.pull", ownerKeyFile, ["--param", "model=gbt-test-small"]);
    expect(pull.exitCode).toBe(0);
    expect(pull.outcome, JSON.stringify(pull.outcome)).toMatchObject({
      state: "succeeded",
      output: { model: "gbt-test-small", createdFile: true },
    });
    const models = (await (await fetch(`${node.url}/v1/models`)).json()) as { data: { id: string }[] };
    expect(models.data.map((m) => m.id)).toEqual(expect.arrayContaining([MODEL, "gbt-test-small"]));
    const small = await chat("gbt-test-small");
    expect(small.status, await small.clone().text()).toBe(200);

    const restart = await createAndSubmit("service.restart", ownerKeyFile, ["--param", "service=backend"]);
    expect(restart.outcome.state, JSON.stringify(restart.outcome)).toBe("succeeded");
    expect((await chat()).status).toBe(200);
    expect((await chat("gbt-test-small")).status).toBe(200);

    const unsafe = await runCli(
      [
        "job",
        "create",
        "model.pull",
        "--key-file",
        ownerKeyFile,
        "--param",
        "model=../../etc/passwd",
        "--json",
      ],
      env(),
    );
    expect(unsafe.exitCode).toBe(6);
    expect(onlyJson<{ error: { code: string } }>(unsafe.stdout).error.code).toBe("INVALID_PARAMS");
  }, 120_000);

  it("benchmark.run stores a signed record, logs.tail reads the node's log, model.switch serves only the new model", async () => {
    const bench = await createAndSubmit("benchmark.run", ownerKeyFile, ["--param", "genTokens=8"]);
    expect(bench.outcome, JSON.stringify(bench.outcome)).toMatchObject({
      state: "succeeded",
      output: { mode: "micro", model: MODEL, meetsFloor: true },
    });
    const recordId = (bench.outcome.output as { recordId: string }).recordId;
    const history = await runCli(["node", "benchmark", "history", "--json"], env());
    expect(history.stdout).toContain(recordId);
    // The benchmark measured the serving backend without closing it.
    expect((await chat()).status).toBe(200);

    const logs = await createAndSubmit("logs.tail", ownerKeyFile, ["--param", "lines=200"]);
    expect(logs.outcome.state, JSON.stringify(logs.outcome)).toBe("succeeded");
    const lines = (logs.outcome.output as { lines: string[] }).lines;
    expect(lines.length).toBeGreaterThan(0);
    expect(
      lines.some((line) => line.includes("listening")),
      lines.join("\n"),
    ).toBe(true);
    expect(await readFile(join(home, "data", "logs", "node.log"), "utf8")).toContain('"service":"gbt-node"');

    const switched = await createAndSubmit("model.switch", ownerKeyFile, ["--param", "model=gbt-test-small"]);
    expect(switched.outcome, JSON.stringify(switched.outcome)).toMatchObject({
      state: "succeeded",
      output: {
        model: "gbt-test-small",
        unloaded: [MODEL],
        antiFlapping: { applies: false, payoutMultiplierAfterSwitch: 0.5, recoveryHours: 72 },
      },
    });
    const models = (await (await fetch(`${node.url}/v1/models`)).json()) as { data: { id: string }[] };
    expect(models.data.map((m) => m.id)).toEqual(["gbt-test-small"]);
    expect((await chat("gbt-test-small")).status).toBe(200);
    expect((await chat(MODEL)).status).toBe(404);
    const config = JSON.parse(await readFile(join(home, "config", "config.json"), "utf8")) as {
      backend: { model?: string };
    };
    expect(config.backend.model).toBe("gbt-test-small");
    // Switching back: the test model's file is still there.
    const back = await createAndSubmit("model.switch", ownerKeyFile, ["--param", `model=${MODEL}`]);
    expect(back.outcome.state, JSON.stringify(back.outcome)).toBe("succeeded");
    expect((await chat()).status).toBe(200);
  }, 180_000);

  it("a job whose signature does not recover, sent straight to the agent, is refused 4xx: not audited, not signed", async () => {
    const audited = async () => {
      const audit = await runCli(["agent", "audit", "--json"], env());
      expect(audit.exitCode, audit.stderr).toBe(0);
      return onlyJson<{ total: number }>(audit.stdout).total;
    };
    const before = await audited();
    const created = await runCli(["job", "create", "node.drain", "--key-file", ownerKeyFile], env());
    const job = JSON.parse(created.stdout) as { signature: string };
    const flipped = `${job.signature.slice(0, 10)}${job.signature[10] === "0" ? "1" : "0"}${job.signature.slice(11)}`;
    const bodies = [
      { ...job, signature: flipped },
      // The other v: the twin of a valid signature (not canonical).
      { ...job, signature: `${job.signature.slice(0, 130)}${job.signature.endsWith("1b") ? "1c" : "1b"}` },
      { ...job, signature: "0x00" },
      "{not json",
    ];
    for (const body of bodies) {
      const response = await fetch(`${node.url}/agent/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(response.status).toBeLessThan(500);
      const text = await response.text();
      const outcome = JSON.parse(text) as Outcome;
      expect(outcome.state).toBe("rejected");
      // No JobResult, and no 65-byte signature of any kind in the answer.
      expect(outcome.result).toBeUndefined();
      expect(text).not.toMatch(/0x[0-9a-fA-F]{130}/);
    }
    expect(await audited()).toBe(before);
    // Nothing ran.
    expect(((await (await fetch(`${node.url}/healthz`)).json()) as { status: string }).status).not.toBe(
      "draining",
    );
  }, 60_000);

  it("gbt agent audit --verify lists the rejected and succeeded jobs on an intact chain", async () => {
    const audit = await runCli(["agent", "audit", "--verify", "--json"], env());
    expect(audit.exitCode, audit.stderr).toBe(0);
    const log = onlyJson<{
      entries: { state: string; code: string | null; type: string }[];
      verified: { ok: boolean; entries: number };
    }>(audit.stdout);
    expect(log.verified.ok).toBe(true);
    expect(log.entries).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ state: "succeeded", type: "status.read" }),
        expect.objectContaining({ state: "rejected", code: "UNKNOWN_SIGNER" }),
        expect.objectContaining({ state: "succeeded", type: "node.drain" }),
        expect.objectContaining({ state: "succeeded", type: "node.resume" }),
      ]),
    );
  }, 60_000);
});
