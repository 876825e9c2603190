import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { verifyJobResult } from "@gbt/protocol";
import { type Address, isAddressEqual } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyJson, runCli, tempHome } from "../../testing/run-cli.js";
import { type GbtProcess, startGbtProcess } from "../../testing/serve-process.js";

interface Outcome {
  jobId?: string;
  state: string;
  code?: string;
  result?: unknown;
  output?: unknown;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

describe("jobs relayed through the gateway to a managed node (real processes)", () => {
  let gatewayHome: string;
  let nodeHome: string;
  let gateway: GbtProcess;
  let node: GbtProcess;
  let gatewayUrl: string;
  let directUrl: string;
  let nodeAddress: Address;
  let ownerKeyFile: string;
  let strangerKeyFile: string;
  let owner: Address;
  const nodeEnv = () => ({ GBT_HOME: nodeHome });

  const create = async (type: string, keyFile: string, extra: string[] = []) => {
    const created = await runCli(["job", "create", type, "--key-file", keyFile, ...extra], nodeEnv());
    expect(created.exitCode, created.stderr).toBe(0);
    return created.stdout;
  };
  const relay = (body: string, address: string = nodeAddress) =>
    fetch(`${gatewayUrl}/v1/nodes/${address}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
  const errorCode = async (response: Response) =>
    ((await response.json()) as { error: { code: string } }).error.code;
  /** Rows in the node's audit log. */
  const audited = async () => {
    const audit = await runCli(["agent", "audit", "--json"], nodeEnv());
    expect(audit.exitCode, audit.stderr).toBe(0);
    return onlyJson<{ total: number }>(audit.stdout).total;
  };

  beforeAll(async () => {
    gatewayHome = await tempHome("gbt-relay-gw-");
    nodeHome = await tempHome("gbt-relay-node-");
    // The node listens on loopback.
    await mkdir(join(gatewayHome, "config"), { recursive: true });
    await writeFile(join(gatewayHome, "config", "gateway.json"), JSON.stringify({ allowPrivateNodes: true }));
    gateway = await startGbtProcess(["gateway", "serve", "--port", "0", "--json", "--log-level", "warn"], {
      GBT_HOME: gatewayHome,
    });
    gatewayUrl = String(gateway.first.url);
    const ownerKey = generatePrivateKey();
    owner = privateKeyToAccount(ownerKey).address;
    ownerKeyFile = join(nodeHome, "owner.key");
    strangerKeyFile = join(nodeHome, "stranger.key");
    await writeFile(ownerKeyFile, `${ownerKey}\n`, { mode: 0o600 });
    await writeFile(strangerKeyFile, `${generatePrivateKey()}\n`, { mode: 0o600 });
    const setup = await runCli(["setup", "--yes", "--owner", owner], nodeEnv());
    expect(setup.exitCode, setup.stderr).toBe(0);
    const config = JSON.parse(await readFile(join(nodeHome, "config", "config.json"), "utf8")) as {
      node: { address: Address };
    };
    nodeAddress = config.node.address;
    // A wide listener needs local API keys for chat; the agent routes never take them.
    expect((await runCli(["keys", "create", "local"], nodeEnv())).exitCode).toBe(0);
    // A node on a wide listener: its agent is closed to direct callers, open to its gateway's token.
    const port = await freePort();
    directUrl = `http://127.0.0.1:${port}`;
    node = await startGbtProcess(
      [
        "serve",
        "--json",
        "--log-level",
        "warn",
        "--host",
        "0.0.0.0",
        "--port",
        String(port),
        "--gateway",
        gatewayUrl,
        "--public-url",
        directUrl,
        "--threads",
        "1",
      ],
      nodeEnv(),
    );
    const adminToken = (await readFile(join(gatewayHome, "data", "gateway", "admin-token"), "utf8")).trim();
    const until = Date.now() + 30_000;
    for (;;) {
      const view = (await (
        await fetch(`${gatewayUrl}/v1/gateway/nodes`, { headers: { authorization: `Bearer ${adminToken}` } })
      ).json()) as { data: { nodeAddress: string; status: string }[] };
      if (
        view.data.some((n) => isAddressEqual(n.nodeAddress as Address, nodeAddress) && n.status === "active")
      )
        break;
      if (Date.now() > until) throw new Error(`the node did not register:\n${node.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }, 180_000);

  afterAll(async () => {
    await node?.stop("SIGKILL");
    await gateway?.stop("SIGKILL");
  });

  it("the node's agent is closed to direct callers on its wide listener", async () => {
    const job = await create("status.read", ownerKeyFile);
    const direct = await fetch(`${directUrl}/agent/jobs`, { method: "POST", body: job });
    expect(direct.status).toBe(404);
  });

  it("relays an owner's job verbatim; the outcome carries a JobResult signed by the node, not the gateway", async () => {
    const job = await create("status.read", ownerKeyFile);
    const response = await relay(job);
    expect(response.status).toBe(200);
    const gatewayAddress = response.headers.get("x-gbt-relayed-by");
    expect(gatewayAddress).toMatch(/^0x[0-9a-fA-F]{40}$/);
    const outcome = (await response.json()) as Outcome;
    expect(outcome.state).toBe("succeeded");
    const result = await verifyJobResult(outcome.result, { job: JSON.parse(job) });
    expect(result.message.state).toBe("succeeded");

    // The same job again: the node answers its stored outcome, through the relay too.
    const jobId = (JSON.parse(job) as { message: { jobId: string } }).message.jobId;
    const status = await runCli(
      ["job", "status", jobId, "--gateway", gatewayUrl, "--node", nodeAddress, "--json"],
      nodeEnv(),
    );
    expect(status.exitCode, status.stderr).toBe(0);
    expect(onlyJson<Outcome>(status.stdout)).toMatchObject({ jobId, state: "succeeded" });
  });

  it("cannot forge or flood: a job signed by anyone but an owner the node published stops at the gateway (403), the node's audit log unchanged", async () => {
    const before = await audited();
    const job = await create("node.drain", strangerKeyFile);
    for (let i = 0; i < 5; i++) {
      const refused = await relay(await create("status.read", strangerKeyFile));
      expect(refused.status).toBe(403);
      expect(await errorCode(refused)).toBe("owner_not_allowed");
    }
    const submitted = await runCli(
      ["job", "submit", "-", "--gateway", gatewayUrl, "--json"],
      nodeEnv(),
      60_000,
      job,
    );
    expect(submitted.exitCode).toBe(4);
    expect(onlyJson<{ error: { code: string } }>(submitted.stdout).error.code).toBe("UNKNOWN_SIGNER");
    // The node never saw them: not one row more in its audit log.
    expect(await audited()).toBe(before);
    // Nothing ran: the node still takes chat requests.
    const health = (await (await fetch(`${directUrl}/healthz`)).json()) as { draining: boolean };
    expect(health.draining).toBe(false);
  });

  it("cannot alter: changed params, another node's address, garbage and unknown nodes stop at the gateway", async () => {
    const job = JSON.parse(
      await create("config.set", ownerKeyFile, ["--param", "key=backend.capacity", "--param", "value=2"]),
    );
    job.payload = { key: "backend.capacity", value: 200 };
    const altered = await relay(JSON.stringify(job));
    expect(altered.status).toBe(401);
    expect(await errorCode(altered)).toBe("payload_hash_mismatch");

    const other = privateKeyToAccount(generatePrivateKey()).address;
    const misrouted = await relay(await create("status.read", ownerKeyFile), other);
    expect(misrouted.status).toBe(400);
    expect(await errorCode(misrouted)).toBe("wrong_node");

    const forOther = await create("status.read", ownerKeyFile, ["--node", other]);
    const unknown = await relay(forOther, other);
    expect(unknown.status).toBe(404);
    expect(await errorCode(unknown)).toBe("unknown_node");

    expect(await errorCode(await relay("{not json"))).toBe("invalid_json");
    expect((await relay("x".repeat(70_000))).status).toBe(413);
    const submitted = await runCli(
      ["job", "submit", "-", "--gateway", gatewayUrl, "--json"],
      nodeEnv(),
      60_000,
      forOther,
    );
    expect(onlyJson<{ error: { code: string } }>(submitted.stdout).error.code).toBe("NOT_FOUND");
  });

  it("a relayed change job runs on the node: drain through the gateway, then resume", async () => {
    const drain = await runCli(
      ["job", "submit", "-", "--gateway", gatewayUrl, "--json"],
      nodeEnv(),
      60_000,
      await create("node.drain", ownerKeyFile),
    );
    expect(drain.exitCode, drain.stdout).toBe(0);
    expect(((await (await fetch(`${directUrl}/healthz`)).json()) as { draining: boolean }).draining).toBe(
      true,
    );
    const resume = await runCli(
      ["job", "submit", "-", "--gateway", gatewayUrl, "--json"],
      nodeEnv(),
      60_000,
      await create("node.resume", ownerKeyFile),
    );
    expect(resume.exitCode, resume.stdout).toBe(0);
    expect(((await (await fetch(`${directUrl}/healthz`)).json()) as { draining: boolean }).draining).toBe(
      false,
    );
  });
});
