/**
 * A home node behind NAT, for real: `gbt serve` runs inside its own network namespace (a veth pair
 * to this host, masquerade for its outbound traffic, new inbound TCP dropped, and its server on
 * the namespace's own loopback), so that the gateway cannot open a connection to it, which the
 * test proves first. It joins over its outbound link, through a TCP relay on the host that the
 * test can cut like a dropped NAT mapping. Then, all through real processes and the official
 * openai client: streamed answers, 32 concurrent streams on one link, a consumer's cancel reaching
 * the node, a cut link (the stream ends with the error event, the next request fails over to a
 * directly reachable node), the reconnect, receipts settled and shown by `gbt node earnings`, and
 * an owner's job relayed to the node's agent over the link.
 *
 * Needs root and iproute2 (CI runs as root and installs iproute2 and iptables): elsewhere it
 * skips, saying why; under CI=true it fails instead.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { join } from "node:path";
import { verifyJobResult } from "@gbt/protocol";
import OpenAI from "openai";
import { type Address, isAddressEqual } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyJson, runCli, tempHome } from "../testing/run-cli.js";
import { type GbtProcess, startGbtProcess, startServeProcess } from "../testing/serve-process.js";

const MODEL = "gbt-test-tiny";
const slot = process.pid % 250;
const NS = `gbtlink${process.pid % 100_000}`;
const HOST_IF = `glh${process.pid % 100_000}`;
const NS_IF = `gln${process.pid % 100_000}`;
const HOST_IP = `10.231.${slot}.1`;
const NS_IP = `10.231.${slot}.2`;

/** Why this machine cannot make a namespace, or null when it can. */
function namespaceProblem(): string | null {
  if (process.platform !== "linux") return "network namespaces are Linux only";
  if (process.getuid?.() !== 0) return "creating a network namespace needs root";
  const ip = spawnSync("ip", ["netns", "list"], { encoding: "utf8" });
  if (ip.error !== undefined) return "iproute2 (`ip`) is not installed";
  if (ip.status !== 0) return `ip netns does not work here: ${ip.stderr.trim()}`;
  return null;
}
const problem = namespaceProblem();
if (problem !== null && process.env.CI) throw new Error(`the namespace test cannot run in CI: ${problem}`);

const run = (command: string, args: string[]) => execFileSync(command, args, { stdio: "pipe" });
const tryRun = (command: string, args: string[]) => spawnSync(command, args, { stdio: "pipe" }).status === 0;
const inNs = (args: string[]) => run("ip", ["netns", "exec", NS, ...args]);
const hasIptables = spawnSync("iptables", ["--version"], { stdio: "pipe" }).status === 0;

/** A TCP relay on the host side of the veth: the node's link goes through it; `cut()` resets every connection. */
async function startRelay(listenHost: string, targetPort: number) {
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = tcpConnect(targetPort, "127.0.0.1");
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => undefined);
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, listenHost, resolve));
  return {
    port: (server.address() as { port: number }).port,
    connections: () => sockets.size,
    cut() {
      for (const socket of sockets) socket.resetAndDestroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Whether a TCP connection to host:port opens within `ms` (refused, dropped or timed out: false). */
function canConnect(host: string, port: number, ms = 1500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

interface NodeView {
  nodeAddress: string;
  url: string;
  status: string;
  eligible: boolean;
  inFlight: number;
}

describe.skipIf(problem !== null)(
  `a node behind NAT joins over its outbound link${problem ? ` (skipped: ${problem})` : ""}`,
  () => {
    let gatewayHome: string;
    let nodeHome: string;
    let gateway: GbtProcess;
    let node: GbtProcess;
    let direct: { stop(signal?: NodeJS.Signals): Promise<number | null> } | undefined;
    let relay: Awaited<ReturnType<typeof startRelay>>;
    let gatewayUrl: string;
    let adminToken: string;
    let nodeAddress: Address;
    let nodePort: number;
    let ownerKeyFile: string;
    let client: OpenAI;

    const nodesView = async (): Promise<NodeView[]> => {
      const response = await fetch(`${gatewayUrl}/v1/gateway/nodes`, {
        headers: { authorization: `Bearer ${adminToken}` },
      });
      return ((await response.json()) as { data: NodeView[] }).data;
    };
    const linked = async () =>
      (await nodesView()).find((n) => isAddressEqual(n.nodeAddress as Address, nodeAddress));
    const until = async (check: () => Promise<boolean>, what: string, ms = 30_000) => {
      const end = Date.now() + ms;
      while (!(await check())) {
        if (Date.now() > end)
          throw new Error(`timed out waiting for ${what}\n${node?.stderr().slice(-3000)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    /** The node's own log lines (pino JSON on its stderr). */
    const nodeLog = () =>
      node
        .stderr()
        .split("\n")
        .flatMap((line) => {
          try {
            return [JSON.parse(line) as Record<string, unknown>];
          } catch {
            return [];
          }
        });

    beforeAll(async () => {
      // The namespace: a veth pair to this host, the node's default route through it.
      run("ip", ["netns", "add", NS]);
      run("ip", ["link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF]);
      run("ip", ["link", "set", NS_IF, "netns", NS]);
      run("ip", ["addr", "add", `${HOST_IP}/30`, "dev", HOST_IF]);
      run("ip", ["link", "set", HOST_IF, "up"]);
      inNs(["ip", "addr", "add", `${NS_IP}/30`, "dev", NS_IF]);
      inNs(["ip", "link", "set", NS_IF, "up"]);
      inNs(["ip", "link", "set", "lo", "up"]);
      inNs(["ip", "route", "add", "default", "via", HOST_IP]);
      if (hasIptables) {
        // As a home router: the node's traffic leaves masqueraded, and no new connection comes in.
        tryRun("iptables", [
          "-t",
          "nat",
          "-A",
          "POSTROUTING",
          "-s",
          `${NS_IP}/30`,
          "!",
          "-o",
          HOST_IF,
          "-j",
          "MASQUERADE",
        ]);
        inNs(["iptables", "-A", "INPUT", "-i", NS_IF, "-p", "tcp", "--syn", "-j", "DROP"]);
      }

      gatewayHome = await tempHome("gbt-link-gw-");
      await mkdir(join(gatewayHome, "config"), { recursive: true });
      // allowPrivateNodes: only for the directly reachable node on loopback (the failover target).
      await writeFile(
        join(gatewayHome, "config", "gateway.json"),
        JSON.stringify({ allowPrivateNodes: true, routing: { rampUpDays: 0 } }),
      );
      gateway = await startGbtProcess(["gateway", "serve", "--port", "0", "--json", "--log-level", "warn"], {
        GBT_HOME: gatewayHome,
      });
      gatewayUrl = String(gateway.first.url);
      adminToken = readFileSync(join(gatewayHome, "data", "gateway", "admin-token"), "utf8").trim();
      relay = await startRelay(HOST_IP, Number(new URL(gatewayUrl).port));

      nodeHome = await tempHome("gbt-link-node-");
      const ownerKey = generatePrivateKey();
      ownerKeyFile = join(nodeHome, "owner.key");
      await writeFile(ownerKeyFile, `${ownerKey}\n`, { mode: 0o600 });
      const owner = privateKeyToAccount(ownerKey).address;
      const setup = await runCli(["setup", "--yes", "--json", "--owner", owner], { GBT_HOME: nodeHome });
      expect(setup.exitCode, setup.stderr).toBe(0);
      nodeAddress = (
        JSON.parse(readFileSync(join(nodeHome, "config", "config.json"), "utf8")) as {
          node: { address: Address };
        }
      ).node.address;
      const started = Date.now();
      node = await startGbtProcess(
        [
          "serve",
          "--json",
          "--log-level",
          "info",
          "--port",
          "0",
          "--threads",
          "1",
          "--capacity",
          "32",
          "--gateway",
          `http://${HOST_IP}:${relay.port}`,
        ],
        { GBT_HOME: nodeHome },
        90_000,
        ["ip", "netns", "exec", NS],
      );
      nodePort = Number(new URL(String(node.first.url)).port);
      expect(node.first).toMatchObject({ reach: "outbound", claimed: true });
      await until(async () => (await linked())?.eligible === true, "the node's registration over its link");
      // Informational: from `gbt serve`'s listening line to routable (the bench measures it properly).
      console.log(`outbound link: routable ${Date.now() - started} ms after start`);
      const created = onlyJson<{ key: { key: string } }>(
        (await runCli(["gateway", "keys", "create", "home", "--json"], { GBT_HOME: gatewayHome })).stdout,
      );
      client = new OpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: created.key.key, maxRetries: 0 });
    }, 180_000);

    afterAll(async () => {
      await node?.stop("SIGKILL");
      await direct?.stop("SIGKILL");
      await gateway?.stop("SIGKILL");
      await relay?.close();
      if (hasIptables) {
        tryRun("iptables", [
          "-t",
          "nat",
          "-D",
          "POSTROUTING",
          "-s",
          `${NS_IP}/30`,
          "!",
          "-o",
          HOST_IF,
          "-j",
          "MASQUERADE",
        ]);
      }
      tryRun("ip", ["netns", "del", NS]);
      tryRun("ip", ["link", "del", HOST_IF]);
    });

    it("cannot be connected to from the gateway's side, yet is registered over its link", async () => {
      // Its server listens on the namespace's own loopback; the veth address drops new connections.
      expect(await canConnect(NS_IP, nodePort)).toBe(false);
      // The same port from inside the namespace answers: the node is up, only unreachable from here.
      const inside = spawnSync("ip", [
        "netns",
        "exec",
        NS,
        process.execPath,
        "-e",
        `fetch("http://127.0.0.1:${nodePort}/healthz").then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(2))`,
      ]);
      expect(inside.status).toBe(0);
      const view = await linked();
      expect(view).toMatchObject({ url: "http://node.gbt-link", status: "active", eligible: true });
      // One connection carries everything: the relay sees exactly the link.
      expect(relay.connections()).toBe(2);
    });

    it("streams answers to the official openai client through the gateway, and whole ones", async () => {
      const stream = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "Hello" }],
        max_tokens: 16,
        stream: true,
        stream_options: { include_usage: true },
      });
      let chunks = 0;
      let completion = 0;
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content) chunks += 1;
        if (chunk.usage) completion = chunk.usage.completion_tokens;
      }
      expect(completion).toBe(16);
      expect(chunks).toBeGreaterThan(0);
      const whole = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "Hello" }],
        max_tokens: 8,
      });
      expect(whole.usage?.completion_tokens).toBe(8);
    });

    it("carries 32 concurrent streams on one link, each complete", async () => {
      const one = async () => {
        const stream = await client.chat.completions.create({
          model: MODEL,
          messages: [{ role: "user", content: "Count" }],
          max_tokens: 24,
          stream: true,
          stream_options: { include_usage: true },
        });
        let usage = 0;
        let finish: string | null | undefined = null;
        for await (const chunk of stream) {
          if (chunk.usage) usage = chunk.usage.completion_tokens;
          finish ??= chunk.choices[0]?.finish_reason;
        }
        return { usage, finish };
      };
      const results = await Promise.all(Array.from({ length: 32 }, one));
      expect(results.every((r) => r.usage === 24 && r.finish === "length")).toBe(true);
      expect(relay.connections()).toBe(2);
    });

    it("a consumer's cancel stops the generation on the node", async () => {
      // Eight long generations share the node's one thread: none can finish before its cancel lands.
      const before = nodeLog().filter((line) => line.msg === "chat completion").length;
      const cancelled = Array.from({ length: 8 }, async () => {
        const controller = new AbortController();
        const stream = await client.chat.completions.create(
          { model: MODEL, messages: [{ role: "user", content: "Go on" }], max_tokens: 1500, stream: true },
          { signal: controller.signal },
        );
        let seen = 0;
        try {
          for await (const chunk of stream) {
            if (chunk.choices[0]?.delta.content) seen += 1;
            if (seen === 3) {
              controller.abort();
              break;
            }
          }
        } catch {
          // the client's own abort
        }
        return seen;
      });
      const ended = () =>
        nodeLog()
          .filter((line) => line.msg === "chat completion")
          .slice(before);
      expect(await Promise.all(cancelled)).toEqual(Array(8).fill(3));
      // Every one of them ends on the node; the tiny model may finish a generation (its context holds
      // ~490 tokens) before its cancel is read, but the cancels that land stop theirs early.
      await until(async () => ended().length === 8, "the node's log of the 8 generations", 20_000);
      const aborted = ended().filter((line) => line.finish === "abort");
      expect(aborted.length).toBeGreaterThan(0);
      // Stopped well before the ~487 tokens a whole generation takes in the tiny model's context.
      for (const line of aborted) expect(Number(line.completionTokens)).toBeLessThan(400);
      await until(async () => (await linked())?.inFlight === 0, "no request left on the node", 10_000);
    });

    it("a cut link ends its streams with the error event; the next request fails over; the node is back within 5 s", async () => {
      // A directly reachable node of the same model, on this host.
      const directHome = await tempHome("gbt-link-direct-");
      expect(
        (
          await runCli(["setup", "--yes", "--owner", privateKeyToAccount(generatePrivateKey()).address], {
            GBT_HOME: directHome,
          })
        ).exitCode,
      ).toBe(0);
      direct = await startServeProcess(["--gateway", gatewayUrl, "--threads", "1", "--capacity", "8"], {
        GBT_HOME: directHome,
      });
      await until(async () => (await nodesView()).filter((n) => n.eligible).length === 2, "the direct node");
      const long = () =>
        client.chat.completions
          .create({
            model: MODEL,
            messages: [{ role: "user", content: "Long" }],
            max_tokens: 1500,
            stream: true,
          })
          .then(async (stream) => {
            let chunks = 0;
            for await (const chunk of stream) if (chunk.choices[0]?.delta.content) chunks += 1;
            return { ok: true as const, chunks };
          })
          .catch((error: Error) => ({ ok: false as const, message: error.message }));
      const streams = Array.from({ length: 6 }, long);
      await until(async () => ((await linked())?.inFlight ?? 0) > 0, "a stream on the linked node", 10_000);
      const cutAt = Date.now();
      relay.cut();
      const outcomes = await Promise.all(streams);
      const failed = outcomes.filter((o) => !o.ok);
      // The linked node's streams ended with the gateway's error event (the SDK raises it), no hang.
      expect(failed.length).toBeGreaterThan(0);
      expect(failed.every((o) => !o.ok && /failed mid-stream/.test(o.message))).toBe(true);
      // The next request is served (by the direct node while the link is down).
      const next = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "Again" }],
        max_tokens: 4,
      });
      expect(next.usage?.completion_tokens).toBe(4);
      await until(async () => (await linked())?.eligible === true, "the node's reconnect", 5_000);
      const backIn = Date.now() - cutAt;
      expect(backIn).toBeLessThan(5_000);
      console.log(`outbound link: routable again ${backIn} ms after the cut`);
      await direct.stop("SIGTERM");
      direct = undefined;
      // Its port now refuses connections: a request routed there fails over before any byte.
      const served = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "Back" }],
        max_tokens: 4,
      });
      expect(served.usage?.completion_tokens).toBe(4);
    });

    it("settles its receipts, and `gbt node earnings` shows them from the gateway's signed view", async () => {
      const earnings = await runCli(["node", "earnings", "--gateway", gatewayUrl, "--no-chain", "--json"], {
        GBT_HOME: nodeHome,
      });
      expect(earnings.exitCode, earnings.stderr).toBe(0);
      const result = onlyJson<{ node: string; earnings: { periods: { allTime: { requests: number } } } }>(
        earnings.stdout,
      );
      expect(isAddressEqual(result.node as Address, nodeAddress)).toBe(true);
      // The 2 + 32 answers above at least (the cancelled and cut ones are billed for what was delivered).
      expect(result.earnings.periods.allTime.requests).toBeGreaterThanOrEqual(34);
    });

    it("relays an owner's job to the node's agent over the link", async () => {
      const created = await runCli(["job", "create", "status.read", "--key-file", ownerKeyFile], {
        GBT_HOME: nodeHome,
      });
      expect(created.exitCode, created.stderr).toBe(0);
      const response = await fetch(`${gatewayUrl}/v1/nodes/${nodeAddress}/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: created.stdout,
      });
      const body = (await response.json()) as { state?: string; result?: unknown };
      expect(response.status, JSON.stringify(body)).toBe(200);
      expect(body.state).toBe("succeeded");
      // Signed by the node's key, so it came from the node itself, over the link.
      const result = await verifyJobResult(body.result, { job: JSON.parse(created.stdout) });
      expect(isAddressEqual(result.message.node, nodeAddress)).toBe(true);
    });
  },
);
