/**
 * A cloud-account node, end to end through the real CLI: `gbt setup --backend openai
 * --backend-api-key-file` stores the key encrypted with the node's passphrase, `gbt serve` unlocks
 * it and serves through a fake OpenAI-compatible server that requires it, registers with a gateway
 * as `backend.kind: "cloud"`, and the key appears in no output, log or config.
 */

import { readFile, stat, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { type FakeOpenAIServer, startFakeOpenAIServer } from "@gbt/node/testing";
import {
  GATEWAY_INFO_PATH,
  GATEWAY_REGISTER_PATH,
  type RegistrationDetails,
  verifyObject,
} from "@gbt/protocol";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterEach, describe, expect, it } from "vitest";
import { onlyJson, runCli, TEST_OWNER, tempHome } from "../testing/run-cli.js";
import { startServeProcess } from "../testing/serve-process.js";

const API_KEY = "sk-cloud-7f3a9c1e5b2d4f6a8c0e-secret";
const PASSPHRASE = "node passphrase for the cloud test";

/** The registration part of a gateway on loopback: verifies and records NodeRegistrations. */
async function startRecordingGateway(): Promise<{
  url: string;
  registrations: RegistrationDetails[];
  close(): Promise<void>;
}> {
  const account = privateKeyToAccount(generatePrivateKey());
  const registrations: RegistrationDetails[] = [];
  const server: Server = createServer((req, res) => {
    let text = "";
    req.on("data", (chunk) => {
      text += chunk;
    });
    req.on("end", () => {
      void (async () => {
        const send = (status: number, body: unknown) =>
          res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
        if (req.method === "GET" && req.url === GATEWAY_INFO_PATH) {
          send(200, { address: account.address, chainId: 31337, heartbeatIntervalMs: 60_000 });
        } else if (req.method === "POST" && req.url === GATEWAY_REGISTER_PATH) {
          const signed = await verifyObject(JSON.parse(text), {
            kind: "NodeRegistration",
            chainId: 31337,
            audience: account.address,
          });
          registrations.push(signed.payload as RegistrationDetails);
          send(200, { instanceId: "cloud-1", linkToken: "l".repeat(43), heartbeatIntervalMs: 60_000 });
        } else {
          send(200, { ok: true });
        }
      })().catch(() => res.writeHead(500).end());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    registrations,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe("a cloud-account node (real CLI processes, fake OpenAI-compatible server with a key)", () => {
  let upstream: FakeOpenAIServer | undefined;
  afterEach(async () => {
    await upstream?.close();
    upstream = undefined;
  });

  it("stores the key encrypted, serves through it, registers as cloud, and never prints it", async () => {
    upstream = await startFakeOpenAIServer({ apiKey: API_KEY, models: ["tiny"] });
    const gateway = await startRecordingGateway();
    const home = await tempHome();
    const keyFile = join(home, "api-key.txt");
    const passFile = join(home, "pass.txt");
    await writeFile(keyFile, `${API_KEY}\n`);
    await writeFile(passFile, PASSPHRASE);
    const outputs: string[] = [];
    try {
      const setup = await runCli(
        [
          "setup",
          "--yes",
          "--json",
          "--owner",
          TEST_OWNER,
          "--backend",
          "openai",
          "--backend-url",
          upstream.url,
          "--backend-api-key-file",
          keyFile,
          "--model",
          "tiny",
          "--passphrase-file",
          passFile,
        ],
        { GBT_HOME: home },
      );
      outputs.push(setup.stdout, setup.stderr);
      expect(setup.exitCode, setup.stderr).toBe(0);
      const profile = onlyJson<{ backendApiKey: { path: string; encrypted: boolean }; gpu: unknown }>(
        setup.stdout,
      );
      expect(profile.backendApiKey.encrypted).toBe(true);
      expect(profile.gpu).toBeNull();
      const sealed = await readFile(profile.backendApiKey.path, "utf8");
      expect(sealed).not.toContain(API_KEY);
      expect(JSON.parse(sealed)).toMatchObject({ format: "gbt-secret", encrypted: true });
      expect((await stat(profile.backendApiKey.path)).mode & 0o777).toBe(0o600);

      // Without the passphrase the key stays locked: a clear auth error, no key in it.
      const locked = await runCli(["serve", "--port", "0", "--json"], { GBT_HOME: home }, 30_000);
      outputs.push(locked.stdout, locked.stderr);
      expect(locked.exitCode).toBe(4);
      expect(onlyJson<{ error: { code: string } }>(locked.stdout).error.code).toBe("PASSPHRASE_REQUIRED");

      const node = await startServeProcess(["--gateway", gateway.url], {
        GBT_HOME: home,
        GBT_PASSPHRASE: PASSPHRASE,
      });
      try {
        const response = await fetch(`${node.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: "tiny", messages: [{ role: "user", content: "Hi" }] }),
        });
        const body = (await response.json()) as { choices: Array<{ message: { content: string } }> };
        expect(response.status).toBe(200);
        expect(body.choices[0]?.message.content).toBe("Hello, world!");
        const chat = upstream.requests.find((r) => r.path === "/v1/chat/completions");
        expect(chat?.headers.authorization).toBe(`Bearer ${API_KEY}`);
        for (let i = 0; i < 100 && gateway.registrations.length === 0; i++) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        expect(gateway.registrations[0]?.backend.kind).toBe("cloud");
      } finally {
        const code = await node.stop("SIGTERM");
        expect(code, node.stderr()).toBe(0);
        outputs.push(node.stderr());
      }

      const status = await runCli(["status", "--json"], { GBT_HOME: home });
      outputs.push(status.stdout, status.stderr);
      expect(status.exitCode).toBe(0);
      const human = await runCli(["status"], { GBT_HOME: home });
      outputs.push(human.stdout, human.stderr);
      expect(human.stdout).toMatch(/cloud account; API key encrypted/);
      outputs.push(await readFile(join(home, "config", "config.json"), "utf8"));
      outputs.push(await readFile(join(home, "data", "logs", "node.log"), "utf8").catch(() => ""));
      for (const output of outputs) expect(output).not.toContain(API_KEY);
    } finally {
      await gateway.close();
    }
  });
});

describe("gbt setup --gpu on this machine (no GPU)", () => {
  it("--yes --json reports the CPU fallback and its reason; --gpu cuda fails with exit 12; --gpu off works", async () => {
    const home = await tempHome();
    const auto = await runCli(["setup", "--yes", "--json"], { GBT_HOME: home });
    expect(auto.exitCode, auto.stderr).toBe(0);
    const gpu = onlyJson<{ gpu: { requested: string; backend: string; summary: string } }>(auto.stdout).gpu;
    expect(gpu).toMatchObject({ requested: "auto", backend: "cpu" });
    expect(gpu.summary).toBe("CPU inference: no GPU was found on this machine.");

    const cuda = await runCli(["setup", "--yes", "--json", "--gpu", "cuda"], { GBT_HOME: home });
    expect(cuda.exitCode).toBe(12);
    const error = onlyJson<{ error: { code: string; message: string; hint: string } }>(cuda.stdout).error;
    expect(error.code).toBe("GPU_UNAVAILABLE");
    expect(error.message).toMatch(/^--gpu cuda cannot be used: /);
    expect(error.hint).toMatch(/--gpu off/);
    const human = await runCli(["setup", "--yes", "--gpu", "cuda"], { GBT_HOME: home });
    expect(human.exitCode).toBe(12);
    expect(human.stderr).toMatch(/--gpu cuda cannot be used/);

    const off = await runCli(["setup", "--yes", "--gpu", "off"], { GBT_HOME: home });
    expect(off.exitCode, off.stderr).toBe(0);
    expect(off.stdout).toMatch(/Inference on\s+CPU inference: the GPU is turned off/);
    const status = await runCli(["status", "--json"], { GBT_HOME: home });
    expect(onlyJson<{ gpu: { summary: string } }>(status.stdout).gpu.summary).toMatch(/turned off/);
  });

  it("gbt node benchmark --gpu off records the CPU run; --gpu cuda fails with exit 12", async () => {
    const home = await tempHome();
    expect((await runCli(["setup", "--yes"], { GBT_HOME: home })).exitCode).toBe(0);
    const cuda = await runCli(["node", "benchmark", "--json", "--gpu", "cuda"], { GBT_HOME: home });
    expect(cuda.exitCode).toBe(12);
    const off = await runCli(
      [
        "node",
        "benchmark",
        "--json",
        "--gpu",
        "off",
        "--repetitions",
        "1",
        "--warmup",
        "0",
        "--threads",
        "1",
      ],
      { GBT_HOME: home },
      120_000,
    );
    expect(off.exitCode, off.stderr).toBe(0);
    const record = onlyJson<{
      payload: { gpu: { backend: string; gpuLayers: number; totalLayers: number } };
    }>(off.stdout);
    expect(record.payload.gpu).toMatchObject({ backend: "cpu", gpuLayers: 0 });
    expect(record.payload.gpu.totalLayers).toBeGreaterThan(0);
  });
});
