import { execFile } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createSetupController,
  loadConfig,
  resolvePaths,
  type SetupServer,
  startSetupServer,
  verifyNodeClaim,
} from "@gbt/node";
import pino from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, onlyJson, repoRoot, runCli, tempHome } from "../../testing/run-cli.js";

/**
 * The real CLI. Until the committed oclif.manifest.json lists `owner:claim` (the lead regenerates
 * it), gbt runs from a scratch root that mirrors this one without a manifest, so oclif finds the
 * compiled command itself, as scripts/check-manifest.mjs does.
 */
const manifestHasClaim = readFileSync(join(repoRoot, "oclif.manifest.json"), "utf8").includes(
  '"owner:claim"',
);
let scratch: string | undefined;

function gbt(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  if (manifestHasClaim) return runCli(args, { GBT_OWNER_KEY: "", ...env });
  if (!scratch) {
    scratch = mkdtempSync(join(tmpdir(), "gbt-claim-cli-root-"));
    copyFileSync(join(repoRoot, "package.json"), join(scratch, "package.json"));
    symlinkSync(join(repoRoot, "packages"), join(scratch, "packages"), "dir");
    symlinkSync(join(repoRoot, "node_modules"), join(scratch, "node_modules"), "dir");
    writeFileSync(
      join(scratch, "run.js"),
      'import { execute } from "@oclif/core";\nawait execute({ dir: import.meta.url });\n',
    );
  }
  const bin = join(scratch, "run.js");
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      {
        env: { ...process.env, CI: "true", GBT_PASSPHRASE: "", GBT_NODE_KEY: "", GBT_OWNER_KEY: "", ...env },
        timeout: 60_000,
      },
      (error, stdout, stderr) =>
        resolve({ stdout, stderr, exitCode: error ? (typeof error.code === "number" ? error.code : 1) : 0 }),
    );
  });
}

interface Profile {
  address: `0x${string}`;
  chainId: number;
  owners: string[];
  claim?: { claimed: boolean; code: string | null };
}

let home: string;
let profile: Profile;
let server: SetupServer;
let ownerKey: string;
let ownerAddress: string;

beforeAll(async () => {
  home = await tempHome("gbt-owner-claim-");
  const setup = await runCli(["setup", "--yes", "--json"], { GBT_HOME: home });
  expect(setup.exitCode, setup.stderr).toBe(0);
  profile = onlyJson<Profile>(setup.stdout);
  expect(profile.owners).toEqual([]);
  ownerKey = join(home, "owner.key");
  const created = await runCli(["owner", "create", "--out", ownerKey, "--json"], { GBT_HOME: home });
  expect(created.exitCode, created.stderr).toBe(0);
  ownerAddress = onlyJson<{ address: string }>(created.stdout).address;
  // The node in setup mode: its setup routes on a real loopback listener, over its real config.
  const setupController = createSetupController({
    paths: resolvePaths({ GBT_HOME: home }),
    nodeAddress: profile.address,
    chainId: profile.chainId,
    hardware: async () => ({ cpu: "test", memory: "1 GB", gpus: "none", backends: "embedded" }),
    logger: pino({ level: "silent" }),
  });
  server = await startSetupServer({ setup: setupController, logger: pino({ level: "silent" }) });
}, 120_000);

afterAll(async () => {
  await server?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("gbt owner claim (real CLI process, real node setup routes)", () => {
  it("gbt status shows the node unclaimed with the code the node's setup page shows", async () => {
    const status = await runCli(["status", "--json"], { GBT_HOME: home });
    expect(status.exitCode, status.stderr).toBe(0);
    const claim = onlyJson<Profile>(status.stdout).claim;
    expect(claim?.claimed).toBe(false);
    expect(claim?.code).toMatch(/^GBT-[0-9A-Z]{4}$/);
    const info = (await (await fetch(`${server.url}/setup/info`)).json()) as { code: string };
    expect(info.code).toBe(claim?.code);
    const human = await runCli(["status"], { GBT_HOME: home });
    expect(human.stdout).toContain(
      `unclaimed (code ${info.code}: run gbt owner claim ${info.code} --key-file owner.key)`,
    );
  });

  it("refuses a code the node does not show, an unreachable node, and --print without the node's facts; nothing changes", async () => {
    const before = await readFile(join(home, "config", "config.json"), "utf8");
    const info = (await (await fetch(`${server.url}/setup/info`)).json()) as { code: string };
    const wrongCode = info.code === "GBT-0000" ? "GBT-1111" : "GBT-0000";
    const wrong = await gbt([
      "owner",
      "claim",
      wrongCode,
      "--key-file",
      ownerKey,
      "--node",
      server.url,
      "--json",
    ]);
    expect(wrong.exitCode, wrong.stderr).toBe(6);
    expect(onlyJson<{ error: { code: string; message: string } }>(wrong.stdout).error).toMatchObject({
      code: "INVALID_INPUT",
      message: expect.stringContaining("another claim code"),
    });
    const junk = await gbt([
      "owner",
      "claim",
      "<script>",
      "--key-file",
      ownerKey,
      "--node",
      server.url,
      "--json",
    ]);
    expect(junk.exitCode).toBe(6);
    const unreachable = await gbt([
      "owner",
      "claim",
      info.code,
      "--key-file",
      ownerKey,
      "--node",
      "http://127.0.0.1:9",
      "--json",
    ]);
    expect(unreachable.exitCode).toBe(5);
    expect(onlyJson<{ error: { code: string } }>(unreachable.stdout).error.code).toBe("NODE_UNREACHABLE");
    const noFacts = await gbt(["owner", "claim", info.code, "--key-file", ownerKey, "--print", "--json"]);
    expect(noFacts.exitCode).toBe(2);
    expect(onlyJson<{ error: { code: string } }>(noFacts.stdout).error.code).toBe("MISSING_INPUT");
    const noKey = await gbt(["owner", "claim", info.code, "--node", server.url, "--json"]);
    expect(noKey.exitCode).toBe(2);
    expect(await readFile(join(home, "config", "config.json"), "utf8")).toBe(before);
  });

  it("--print signs a claim for the given node without contacting any; the node refuses one printed for another node", async () => {
    const info = (await (await fetch(`${server.url}/setup/info`)).json()) as { code: string };
    const other = privateKeyToAccount(generatePrivateKey()).address;
    const printed = await gbt([
      "owner",
      "claim",
      info.code.toLowerCase(),
      "--key-file",
      ownerKey,
      "--print",
      "--node-address",
      other,
      "--chain-id",
      String(profile.chainId),
    ]);
    expect(printed.exitCode, printed.stderr).toBe(0);
    const signed = JSON.parse(printed.stdout) as { message: { owner: string; code: string; node: string } };
    expect(signed.message).toMatchObject({ owner: ownerAddress, code: info.code, node: other });
    expect(await verifyNodeClaim(signed, { node: other, code: info.code, chainId: profile.chainId })).toBe(
      ownerAddress,
    );
    const refused = await fetch(`${server.url}/setup/claim`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: printed.stdout,
    });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("claim_wrong_node");
    expect((await loadConfig(join(home, "config", "config.json"))).node.owners).toEqual([]);
  });

  it("claims the node: the owner recorded, gbt status says claimed, a second claim is refused as a conflict", async () => {
    const info = (await (await fetch(`${server.url}/setup/info`)).json()) as { code: string };
    const claimed = await gbt([
      "owner",
      "claim",
      info.code,
      "--key-file",
      ownerKey,
      "--node",
      server.url,
      "--json",
    ]);
    expect(claimed.exitCode, claimed.stderr + claimed.stdout).toBe(0);
    expect(onlyJson(claimed.stdout)).toEqual({
      owner: ownerAddress,
      node: profile.address,
      owners: [ownerAddress],
      chainId: profile.chainId,
      nodeUrl: server.url,
    });
    expect((await loadConfig(join(home, "config", "config.json"))).node.owners).toEqual([ownerAddress]);
    const status = await runCli(["status", "--json"], { GBT_HOME: home });
    expect(onlyJson<Profile>(status.stdout).claim).toEqual({ claimed: true, code: null });
    expect((await runCli(["status"], { GBT_HOME: home })).stdout).toMatch(/Claim\s+claimed/);

    const again = await gbt([
      "owner",
      "claim",
      info.code,
      "--key-file",
      ownerKey,
      "--node",
      server.url,
      "--json",
    ]);
    expect(again.exitCode).toBe(9);
    expect(onlyJson<{ error: { code: string } }>(again.stdout).error.code).toBe("CONFLICT");
    const human = await gbt(["owner", "claim", info.code, "--key-file", ownerKey, "--node", server.url]);
    expect(human.stderr).toContain("already claimed");
  });
});
