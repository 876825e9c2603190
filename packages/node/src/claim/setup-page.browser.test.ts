/**
 * The setup page in a real browser (Debian's chromium through playwright-core), served by the
 * node's own routes over a real loopback socket: it shows the code and the scan, refuses a claim
 * for another node and an expired one (the config unchanged), and claims with a good one.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signObject } from "@gbt/protocol";
import { type GbtPaths, resolvePaths } from "@gbt/store";
import { createAdaptorServer } from "@hono/node-server";
import pino from "pino";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import type { Address } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, saveConfig } from "../config.js";
import { createNodeAuth } from "../server/node-auth.js";
import { createNodeMetrics } from "../server/node-metrics.js";
import { nodeRoutes } from "../server/node-routes.js";
import { createScriptedBackend } from "../testing/scripted-backend.js";
import { createSetupController } from "./setup-controller.js";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
const CHAIN = 31337;
const nodeAddress = privateKeyToAccount(generatePrivateKey()).address;
const owner = privateKeyToAccount(generatePrivateKey());

// Skipped only off CI (saying why); under CI a missing browser fails the file.
if (!hasChromium && process.env.CI) {
  throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium).`);
}

describe.skipIf(!hasChromium)(
  `setup page in chromium${hasChromium ? "" : ` (skipped: ${CHROMIUM} is missing)`}`,
  () => {
    let paths: GbtPaths;
    let server: Server;
    let url: string;
    let browser: BrowserContext;
    let userDataDir: string;
    let page: Page;
    const consoleErrors: string[] = [];

    beforeAll(async () => {
      paths = resolvePaths({ GBT_HOME: await mkdtemp(join(tmpdir(), "gbt-setup-page-")) });
      await saveConfig(paths.configFile, {
        version: 1,
        node: { address: nodeAddress, mode: "local", chainId: CHAIN, owners: [] },
        backend: { kind: "embedded" },
      });
      const logger = pino({ level: "silent" });
      const setup = createSetupController({
        paths,
        nodeAddress,
        chainId: CHAIN,
        hardware: async () => ({
          cpu: "Test CPU <img src=x onerror=alert(1)>, 8 cores / 16 threads",
          memory: "31.2 GB (20.0 GB available)",
          gpus: "NVIDIA H200 139.8 GB",
          backends: "embedded",
        }),
        logger,
      });
      const app = nodeRoutes({
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
      server = createAdaptorServer({ fetch: app.fetch, overrideGlobalObjects: false }) as Server;
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      userDataDir = await mkdtemp(join(tmpdir(), "gbt-chromium-"));
      // A fresh profile per run: launchPersistentContext is how playwright takes a user-data dir.
      browser = await chromium.launchPersistentContext(userDataDir, {
        executablePath: CHROMIUM,
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
      });
      page = browser.pages()[0] ?? (await browser.newPage());
      page.on("console", (message) => {
        if (message.type() === "error") consoleErrors.push(message.text());
      });
      page.on("dialog", (dialog) => {
        consoleErrors.push(`dialog opened: ${dialog.message()}`);
        void dialog.dismiss();
      });
    }, 120_000);

    afterAll(async () => {
      await browser?.close();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
    });

    async function claim(fields: { node?: Address; issuedAt?: number; expiresAt?: number; code: string }) {
      const issuedAt = fields.issuedAt ?? Math.floor(Date.now() / 1000);
      return JSON.stringify(
        await signObject(owner, {
          kind: "NodeClaim",
          chainId: CHAIN,
          message: {
            node: fields.node ?? nodeAddress,
            owner: owner.address,
            code: fields.code,
            issuedAt,
            expiresAt: fields.expiresAt ?? issuedAt + 600,
          },
        }),
        null,
        2,
      );
    }

    async function submit(text: string): Promise<string> {
      await page.fill("#claim", text);
      await page.click("#submit");
      // A locator wait: the page's CSP forbids eval, which a string predicate would need.
      await page.locator("#result", { hasText: /^(Refused|Claimed|Could not)/ }).waitFor();
      return (await page.textContent("#result")) ?? "";
    }

    it("shows the node, its code, the scan (escaped) and the command; refuses bad claims; claims with a good one", async () => {
      await page.goto(`${url}/setup`);
      const info = (await (await fetch(`${url}/setup/info`)).json()) as { code: string };
      expect(info.code).toMatch(/^GBT-[0-9A-Z]{4}$/);
      expect(await page.textContent("#code")).toBe(info.code);
      expect(await page.textContent("#node")).toBe(nodeAddress);
      expect(await page.textContent("#status")).toBe("unclaimed");
      const hardware = (await page.textContent("#hardware")) ?? "";
      expect(hardware).toContain("Test CPU <img src=x onerror=alert(1)>, 8 cores / 16 threads");
      expect(hardware).toContain("NVIDIA H200");
      expect(hardware).toContain("31.2 GB");
      expect(await page.locator("#hardware img").count()).toBe(0);
      expect(await page.textContent("#command")).toBe(`gbt owner claim ${info.code} --key-file owner.key`);
      const before = await readFile(paths.configFile, "utf8");

      const other = privateKeyToAccount(generatePrivateKey()).address;
      const wrongNode = await submit(await claim({ node: other, code: info.code }));
      expect(wrongNode).toContain("Refused");
      expect(wrongNode).toContain("claim_wrong_node");
      expect(wrongNode).toContain(other);
      expect(await readFile(paths.configFile, "utf8")).toBe(before);

      const past = Math.floor(Date.now() / 1000) - 7200;
      const expired = await submit(await claim({ code: info.code, issuedAt: past, expiresAt: past + 600 }));
      expect(expired).toContain("Refused");
      expect(expired).toContain("claim_expired");
      expect(await readFile(paths.configFile, "utf8")).toBe(before);

      const junk = await submit("this is not a claim");
      expect(junk).toContain("invalid_json");

      const good = await submit(await claim({ code: info.code }));
      expect(good).toBe(`Claimed: this node now belongs to ${owner.address}.`);
      expect(await page.textContent("#status")).toBe("claimed");
      expect(await page.textContent("#owners")).toBe(owner.address);
      expect((await loadConfig(paths.configFile)).node.owners).toEqual([owner.address]);

      // Reloaded, the page says the node is claimed and shows no code any more.
      await page.reload();
      expect(await page.textContent("#status")).toBe("claimed");
      expect(await page.textContent("#owners")).toBe(owner.address);
      expect(await page.textContent("#code")).toBe("none (claimed)");
      // The inline script ran under the CSP (no violation), and nothing injected ran.
      expect(consoleErrors.filter((e) => !/Failed to load resource/.test(e))).toEqual([]);
    });
  },
);
