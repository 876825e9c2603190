/**
 * A real Node Agent (@gbt/agent: signature, owner, audience, chain, expiry, replay, allowlist,
 * params) behind a loopback HTTP server that speaks the node's `/agent/*` routes, over a small
 * in-memory node. Operator tests talk to it exactly as the Operator talks to `gbt serve`, and read
 * back which jobs arrived and what ran.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createAgent,
  createExecutableAllowlist,
  type JobHandlers,
  openAgentDatabase,
  openAuditLog,
} from "@gbt/agent";
import { agentOutcomeStatus, describeAllowlist } from "@gbt/protocol";
import type { Address, LocalAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

export interface TestAgentServer {
  url: string;
  node: LocalAccount;
  chainId: number;
  /** Every body POSTed to /agent/jobs, parsed. */
  readonly received: unknown[];
  /** What the in-memory node did: `restart:backend`, `drain`, `benchmark:micro`… */
  readonly actions: string[];
  close(): Promise<void>;
}

export interface TestAgentServerOptions {
  owners: readonly Address[];
  chainId?: number;
  /** Published allowlist version (default the agent's own). */
  publishedVersion?: number;
  /** Published node address (default the agent's own, as `gbt serve` publishes it). */
  publishedNode?: Address;
}

export async function startTestAgentServer(options: TestAgentServerOptions): Promise<TestAgentServer> {
  const dir = await mkdtemp(join(tmpdir(), "gbt-operator-agent-"));
  const node = privateKeyToAccount(generatePrivateKey());
  const chainId = options.chainId ?? 31337;
  const actions: string[] = [];
  const received: unknown[] = [];
  let draining = false;
  let config: Record<string, unknown> = { node: { mode: "local" } };
  const models = ["gbt-test-tiny"];
  const handlers: JobHandlers = {
    async status() {
      return {
        address: node.address,
        mode: "local",
        chainId,
        server: { url: "http://127.0.0.1:0", inFlight: 0, draining },
        backend: {
          kind: "embedded",
          location: "in-process",
          health: { ok: true },
          models: models.map((id) => ({ id })),
        },
      };
    },
    async drain() {
      draining = true;
      actions.push("drain");
    },
    async resume() {
      draining = false;
      actions.push("resume");
    },
    isDraining: () => draining,
    async readConfig() {
      return structuredClone(config);
    },
    async writeConfig(next) {
      config = structuredClone(next);
    },
    async listModels() {
      return [...models];
    },
    async restartService(service) {
      actions.push(`restart:${service}`);
    },
    async backendHealth() {
      return { ok: true };
    },
    async runBenchmark(benchmark) {
      actions.push(`benchmark:${benchmark.mode}`);
      return {
        recordId: "00000000-0000-4000-8000-000000000001",
        mode: benchmark.mode,
        model: "gbt-test-tiny",
        decodeTokPerSec: 1234.5,
        ttftMsP50: 3.2,
        meetsFloor: true,
      } as never;
    },
    async tailLogs(lines) {
      actions.push(`logs:${lines}`);
      return ["first line", "api key sk-secret-value-1234567890 used"].slice(-lines);
    },
  };
  const allowlist = createExecutableAllowlist();
  const db = openAgentDatabase(join(dir, "agent.db"));
  const auditLog = openAuditLog(join(dir, "audit.db"));
  const agent = createAgent({
    db,
    auditLog,
    account: node,
    chainId,
    owners: () => options.owners,
    allowlist,
    handlers,
  });
  const described = describeAllowlist(allowlist);
  const published = {
    ...described,
    ...(options.publishedVersion === undefined ? {} : { version: options.publishedVersion }),
    node: options.publishedNode ?? node.address,
    chainId,
  };

  const server: Server = createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const path = (req.url ?? "/").split("?")[0] ?? "/";
      void (async () => {
        if (path === "/agent/allowlist" && req.method === "GET") return send(200, published);
        if (path === "/agent/jobs" && req.method === "POST") {
          const body = Buffer.concat(chunks);
          try {
            received.push(JSON.parse(body.toString("utf8")));
          } catch {
            received.push(body.toString("utf8"));
          }
          const outcome = await agent.submit(body);
          return send(agentOutcomeStatus(outcome), outcome);
        }
        const match = /^\/agent\/jobs\/([^/]+)$/.exec(path);
        if (match?.[1] && req.method === "GET") {
          const outcome = agent.status(decodeURIComponent(match[1]));
          return outcome ? send(200, outcome) : send(404, { error: { message: "not found" } });
        }
        send(404, { error: { message: `No route ${req.method} ${path}` } });
      })().catch((error: unknown) => send(500, { error: { message: String(error) } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    node,
    chainId,
    received,
    actions,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      auditLog.close();
      db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
