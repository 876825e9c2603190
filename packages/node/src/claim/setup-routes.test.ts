import { mkdtemp } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signObject } from "@gbt/protocol";
import { type GbtPaths, resolvePaths } from "@gbt/store";
import pino from "pino";
import type { Address } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig, saveConfig } from "../config.js";
import { createNodeAuth } from "../server/node-auth.js";
import { createNodeMetrics } from "../server/node-metrics.js";
import { nodeRoutes } from "../server/node-routes.js";
import { createScriptedBackend } from "../testing/scripted-backend.js";
import { readClaimCode } from "./claim-code.js";
import { hostAllowed, peerKind } from "./setup-access.js";
import { CLAIM_FAILURE_LIMIT, createSetupController, type SetupController } from "./setup-controller.js";
import { startSetupServer } from "./setup-server.js";

const CHAIN = 31337;
const logger = pino({ level: "silent" });
const nodeAddress = privateKeyToAccount(generatePrivateKey()).address;
const owner = privateKeyToAccount(generatePrivateKey());

async function nodeHome(): Promise<GbtPaths> {
  const paths = resolvePaths({ GBT_HOME: await mkdtemp(join(tmpdir(), "gbt-setup-routes-")) });
  await saveConfig(paths.configFile, {
    version: 1,
    node: { address: nodeAddress, mode: "local", chainId: CHAIN, owners: [] },
    backend: { kind: "embedded" },
  });
  return paths;
}

function controllerFor(paths: GbtPaths, extra: { allowLan?: boolean; now?: () => number } = {}) {
  return createSetupController({
    paths,
    nodeAddress,
    chainId: CHAIN,
    hardware: async () => ({
      cpu: "Test CPU <b>8</b> cores",
      memory: "16.0 GB",
      gpus: "none",
      backends: "embedded",
    }),
    logger,
    ...extra,
  });
}

function appFor(setup?: SetupController) {
  return nodeRoutes({
    backend: createScriptedBackend(),
    capacity: 1,
    metrics: createNodeMetrics(),
    auth: createNodeAuth({ requireApiKey: true, apiKeys: { verify: () => false } }),
    logger,
    agentServed: true,
    inFlight: () => 0,
    draining: () => false,
    setup,
  });
}

/** The env @hono/node-server hands a route: the socket's peer address. */
const peer = (remoteAddress: string | undefined) => ({ incoming: { socket: { remoteAddress } } });
const localHost = { host: "127.0.0.1:8787" };

async function claimBody(code: string, fields: { node?: Address } = {}) {
  const issuedAt = Math.floor(Date.now() / 1000);
  return signObject(owner, {
    kind: "NodeClaim",
    chainId: CHAIN,
    message: {
      node: fields.node ?? nodeAddress,
      owner: owner.address,
      code,
      issuedAt,
      expiresAt: issuedAt + 600,
    },
  });
}

const post = (body: string, headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { ...localHost, "content-type": "application/json", ...headers },
  body,
});

async function errorCode(response: Response): Promise<[number, string]> {
  return [response.status, ((await response.json()) as { error: { code: string } }).error.code];
}

describe("who may use the setup routes (hostile first)", () => {
  it("classifies peers: loopback, private LAN, and everything else (link-local, public, none)", () => {
    for (const a of ["127.0.0.1", "127.8.9.1", "::1", "::ffff:127.0.0.1"])
      expect(peerKind(a)).toBe("loopback");
    for (const a of [
      "10.1.2.3",
      "172.16.0.1",
      "172.31.255.255",
      "192.168.1.20",
      "fd12:3456::1",
      "fc00::1",
      "::ffff:192.168.0.2",
    ])
      expect(peerKind(a)).toBe("lan");
    for (const a of [
      undefined,
      "",
      "169.254.1.1",
      "fe80::1",
      "fe80::1%eth0",
      "172.32.0.1",
      "8.8.8.8",
      "2001:db8::1",
      "::",
      "junk",
    ])
      expect(peerKind(a)).toBe("other");
    expect(hostAllowed("evil.example.com:8787", true)).toBe(false);
    expect(hostAllowed("127.0.0.1:8787", false)).toBe(true);
    expect(hostAllowed("[::1]:8787", false)).toBe(true);
    expect(hostAllowed("mynode.local:8787", false)).toBe(false);
    expect(hostAllowed("mynode.local:8787", true)).toBe(true);
    expect(hostAllowed(undefined, true)).toBe(false);
  });

  it("answers 403 setup_loopback_only to LAN, link-local, public and tunnelled (no address) peers", async () => {
    const app = appFor(controllerFor(await nodeHome()));
    for (const address of ["192.168.1.20", "fe80::1", "8.8.8.8", undefined]) {
      for (const path of ["/setup", "/setup/info"]) {
        expect(await errorCode(await app.request(path, { headers: localHost }, peer(address)))).toEqual([
          403,
          "setup_loopback_only",
        ]);
      }
      const claim = await app.request("/setup/claim", post("{}"), peer(address));
      expect(await errorCode(claim)).toEqual([403, "setup_loopback_only"]);
    }
    // A request handed to the app with no socket at all (as a tunnel would) is refused too.
    expect((await app.request("/setup/info", { headers: localHost })).status).toBe(403);
  });

  it("with allowLan admits private-LAN peers but not link-local or public ones, and hides the code from them", async () => {
    const setup = controllerFor(await nodeHome(), { allowLan: true });
    const app = appFor(setup);
    const lan = await app.request(
      "/setup/info",
      { headers: { host: "192.168.1.5:8787" } },
      peer("192.168.1.20"),
    );
    expect(lan.status).toBe(200);
    expect(await lan.json()).toMatchObject({
      claimed: false,
      code: null,
      codeHidden: true,
      node: nodeAddress,
    });
    const code = (await setup.state()).code as string;
    const page = await app.request("/setup", { headers: { host: "192.168.1.5:8787" } }, peer("192.168.1.20"));
    const html = await page.text();
    expect(html).toContain(nodeAddress);
    expect(html).not.toContain(code);
    for (const address of ["169.254.3.3", "fe80::2", "100.64.0.1", "8.8.8.8"]) {
      expect((await app.request("/setup/info", { headers: localHost }, peer(address))).status).toBe(403);
    }
    const local = await app.request("/setup/info", { headers: localHost }, peer("127.0.0.1"));
    expect(((await local.json()) as { code: string }).code).toMatch(/^GBT-/);
  });

  it("refuses a rebound domain in Host and a POST from another origin", async () => {
    const app = appFor(controllerFor(await nodeHome()));
    const rebound = await app.request(
      "/setup/info",
      { headers: { host: "attacker.example:8787" } },
      peer("127.0.0.1"),
    );
    expect(await errorCode(rebound)).toEqual([403, "setup_bad_host"]);
    const cross = await app.request(
      "/setup/claim",
      post("{}", { origin: "http://attacker.example" }),
      peer("127.0.0.1"),
    );
    expect(await errorCode(cross)).toEqual([403, "setup_cross_origin"]);
    const nullOrigin = await app.request("/setup/claim", post("{}", { origin: "null" }), peer("127.0.0.1"));
    expect(await errorCode(nullOrigin)).toEqual([403, "setup_cross_origin"]);
  });

  it("answers 413 to a body over 16 KiB (declared or streamed), 400 to non-JSON, and changes nothing", async () => {
    const paths = await nodeHome();
    const app = appFor(controllerFor(paths));
    const big = JSON.stringify({ pad: "x".repeat(17 * 1024) });
    expect(await errorCode(await app.request("/setup/claim", post(big), peer("127.0.0.1")))).toEqual([
      413,
      "request_too_large",
    ]);
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 20; i++) controller.enqueue(new TextEncoder().encode("x".repeat(1024)));
        controller.close();
      },
    });
    const streamed = await app.request(
      "/setup/claim",
      { ...post(""), body: stream, duplex: "half" } as RequestInit,
      peer("127.0.0.1"),
    );
    expect(streamed.status).toBe(413);
    expect(await errorCode(await app.request("/setup/claim", post("{nope"), peer("127.0.0.1")))).toEqual([
      400,
      "invalid_json",
    ]);
    const form = await app.request(
      "/setup/claim",
      post("{}", { "content-type": "application/x-www-form-urlencoded" }),
      peer("127.0.0.1"),
    );
    expect(await errorCode(form)).toEqual([400, "claim_not_json"]);
    expect((await loadConfig(paths.configFile)).node.owners).toEqual([]);
  });

  it("without a setup controller the paths are unknown routes behind the API key", async () => {
    const app = appFor(undefined);
    expect((await app.request("/setup", { headers: localHost }, peer("127.0.0.1"))).status).toBe(401);
    expect((await app.request("/setup/claim", post("{}"), peer("127.0.0.1"))).status).toBe(401);
  });
});

describe("the setup controller", () => {
  it("refuses another node's claim and a stale code, then claims, then refuses every later claim", async () => {
    const paths = await nodeHome();
    const setup = controllerFor(paths);
    const app = appFor(setup);
    const claimed: Address[] = [];
    setup.onClaimed((who) => claimed.push(who));
    const { code } = await setup.state();
    expect(code).toMatch(/^GBT-/);
    const other = privateKeyToAccount(generatePrivateKey()).address;
    const wrongNode = await app.request(
      "/setup/claim",
      post(JSON.stringify(await claimBody(code as string, { node: other }))),
      peer("127.0.0.1"),
    );
    expect(await errorCode(wrongNode)).toEqual([400, "claim_wrong_node"]);
    const wrongCode = await app.request(
      "/setup/claim",
      post(JSON.stringify(await claimBody("GBT-0000"))),
      peer("127.0.0.1"),
    );
    expect(await errorCode(wrongCode)).toEqual([400, "claim_wrong_code"]);
    expect(claimed).toEqual([]);

    const good = JSON.stringify(await claimBody(code as string));
    const ok = await app.request("/setup/claim", post(good), peer("::1"));
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ owner: owner.address, node: nodeAddress, owners: [owner.address] });
    expect(claimed).toEqual([owner.address]);
    expect(await setup.state()).toMatchObject({ claimed: true, code: null, owners: [owner.address] });
    expect(await readClaimCode(paths)).not.toBe(code);
    // The same claim again (a replay) and a fresh one: the node is claimed.
    expect(await errorCode(await app.request("/setup/claim", post(good), peer("127.0.0.1")))).toEqual([
      409,
      "node_already_claimed",
    ]);
  });

  it("of two racing claims, exactly one wins and the other is told the node is claimed", async () => {
    const paths = await nodeHome();
    const setup = controllerFor(paths);
    const { code } = await setup.state();
    const second = privateKeyToAccount(generatePrivateKey());
    const issuedAt = Math.floor(Date.now() / 1000);
    const rival = await signObject(second, {
      kind: "NodeClaim",
      chainId: CHAIN,
      message: {
        node: nodeAddress,
        owner: second.address,
        code: code as string,
        issuedAt,
        expiresAt: issuedAt + 600,
      },
    });
    const results = await Promise.allSettled([
      setup.claim(await claimBody(code as string)),
      setup.claim(rival),
    ]);
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]?.reason).toMatchObject({ wireCode: "node_already_claimed", status: 409 });
    const owners = (await loadConfig(paths.configFile)).node.owners;
    expect(owners).toHaveLength(1);
    expect(owners[0]).toBe((won[0] as PromiseFulfilledResult<{ owner: Address }>).value.owner);
  });

  it("rate limits refused claims on its clock, so a code cannot be guessed by signing in a loop", async () => {
    let clock = 1_800_000_000_000;
    const paths = await nodeHome();
    const setup = controllerFor(paths, { now: () => clock });
    const { code } = await setup.state();
    const issuedAt = Math.floor(clock / 1000);
    const sign = (c: string) =>
      signObject(owner, {
        kind: "NodeClaim",
        chainId: CHAIN,
        message: { node: nodeAddress, owner: owner.address, code: c, issuedAt, expiresAt: issuedAt + 600 },
      });
    const guess = code === "GBT-0000" ? "GBT-1111" : "GBT-0000";
    for (let i = 0; i < CLAIM_FAILURE_LIMIT; i++) {
      await expect(setup.claim(await sign(guess))).rejects.toMatchObject({ wireCode: "claim_wrong_code" });
    }
    // Now even the right code waits until the window has passed.
    await expect(setup.claim(await sign(code as string))).rejects.toMatchObject({
      wireCode: "claim_rate_limited",
      status: 429,
      headers: { "retry-after": "60" },
    });
    clock += 59_999;
    await expect(setup.claim(await sign(code as string))).rejects.toMatchObject({
      wireCode: "claim_rate_limited",
    });
    clock += 1;
    await expect(setup.claim(await sign(code as string))).resolves.toEqual({ owner: owner.address });
  });
});

describe("over a real socket", () => {
  const closers: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const close of closers) await close();
  });

  it("serves the page with a strict CSP and claims through POST /setup/claim from a loopback peer", async () => {
    const paths = await nodeHome();
    const setup = controllerFor(paths);
    const server = await startSetupServer({ setup, logger });
    closers.push(() => server.close());
    const page = await fetch(`${server.url}/setup`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toMatch(
      /default-src 'none'; script-src 'nonce-[^']+'/,
    );
    const html = await page.text();
    // The scan is escaped, never markup.
    expect(html).toContain("Test CPU &lt;b&gt;8&lt;/b&gt; cores");
    expect(html).not.toContain("<b>8</b>");
    const info = (await (await fetch(`${server.url}/setup/info`)).json()) as { code: string };
    // A body far over the limit on a real socket: 413, and the server is still there.
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        `${server.url}/setup/claim`,
        { method: "POST", headers: { "content-type": "application/json" } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.end("x".repeat(64 * 1024));
    });
    expect(status).toBe(413);
    const answer = await fetch(`${server.url}/setup/claim`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(await claimBody(info.code)),
    });
    expect(answer.status).toBe(200);
    expect((await loadConfig(paths.configFile)).node.owners).toEqual([owner.address]);
  });
});
