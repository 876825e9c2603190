/**
 * The GPU a node's signed benchmark ran on reaches the gateway's node list (and `gbt gateway
 * nodes`): device, VRAM, driver and the layers offloaded. A malformed or oversized `gpu` is dropped,
 * never the node.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type GatewayNode, gatewayNodeListSchema } from "@gbt/protocol";
import pino from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterEach, beforeEach, expect, it } from "vitest";
import { parseGatewayConfig } from "./gateway-config.js";
import { type GatewayServer, startGatewayServer } from "./gateway-server.js";
import { type FakeNode, startFakeNode } from "./testing/fake-node.js";

const ADMIN = "admin-token-for-tests-0123456789";
let dir: string;
let gateway: GatewayServer;
const nodes: FakeNode[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "gbt-gw-gpu-"));
  gateway = await startGatewayServer({
    config: parseGatewayConfig({ port: 0, allowPrivateNodes: true, routing: { rampUpDays: 0 } }),
    dataDir: dir,
    account: privateKeyToAccount(generatePrivateKey()),
    adminToken: ADMIN,
    logger: pino({ level: "silent" }),
  });
});

afterEach(async () => {
  for (const node of nodes.splice(0)) await node.close();
  await gateway.close();
  rmSync(dir, { recursive: true, force: true });
});

const H200 = {
  backend: "cuda",
  devices: ["NVIDIA H200"],
  vramTotalMB: 143_771,
  driver: "570.124.06",
  gpuLayers: 33,
  totalLayers: 33,
  summary: "CUDA on NVIDIA H200 (140.4 GiB VRAM).",
};

async function listed(): Promise<GatewayNode[]> {
  const response = await fetch(`${gateway.url}/v1/gateway/nodes`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  return gatewayNodeListSchema.parse(await response.json()).data;
}

it("shows the GPU of a node's signed benchmark; drops a malformed one, keeps the node", async () => {
  for (const gpu of [H200, { ...H200, vramTotalMB: "lots" }, undefined]) {
    const node = await startFakeNode({
      benchmarkTokPerSec: 80,
      ...(gpu !== undefined ? { benchmarkGpu: gpu } : {}),
    });
    nodes.push(node);
    expect((await node.register(gateway.url)).status).toBe(200);
  }
  const byAddress = new Map((await listed()).map((n) => [n.nodeAddress.toLowerCase(), n]));
  const [withGpu, malformed, without] = nodes.map((n) => byAddress.get(n.account.address.toLowerCase()));
  expect(withGpu?.gpu).toEqual(H200);
  expect(malformed?.gpu).toBeNull();
  expect(malformed?.tokPerSec.benchmark).toBe(80);
  expect(without?.gpu).toBeNull();
});
