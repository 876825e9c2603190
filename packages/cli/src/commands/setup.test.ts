import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { onlyJson, runCli, tempHome } from "../testing/run-cli.js";

interface Profile {
  address: string;
  owners: string[];
  mode: string;
  backend: { kind: string; model?: string };
  hardware: {
    cpu: { physicalCores: number | null; logicalCores: number | null } | null;
    memory: { totalMB: number } | null;
    gpus: unknown[];
  };
  detectedBackends: { kind: string; available: boolean }[];
  changes: string[];
}

describe("gbt setup / gbt status (real CLI process, no TTY)", () => {
  it("sets up an empty GBT_HOME, is idempotent, and status agrees", async () => {
    const home = await tempHome();
    const first = await runCli(["setup", "--yes", "--json"], { GBT_HOME: home });
    expect(first.exitCode, first.stderr).toBe(0);
    const profile = onlyJson<Profile>(first.stdout);
    expect(profile.address).toMatch(/^0x[0-9a-fA-F]{40}$/);
    expect(profile.mode).toBe("local");
    expect(profile.backend.kind).toBe("embedded");
    expect(profile.hardware.gpus).toEqual([]);
    expect(profile.hardware.cpu?.logicalCores).toBeGreaterThan(0);
    expect(profile.hardware.memory?.totalMB).toBeGreaterThan(0);
    expect(profile.detectedBackends.find((b) => b.kind === "embedded")?.available).toBe(true);
    expect(profile.changes.length).toBeGreaterThan(0);

    const config = await readFile(join(home, "config", "config.json"), "utf8");
    const second = await runCli(["setup", "--yes", "--json"], { GBT_HOME: home });
    expect(second.exitCode).toBe(0);
    const again = onlyJson<Profile>(second.stdout);
    expect(again.address).toBe(profile.address);
    expect(again.changes).toEqual([]);
    expect(await readFile(join(home, "config", "config.json"), "utf8")).toBe(config);

    const status = await runCli(["status", "--json"], { GBT_HOME: home });
    expect(status.exitCode).toBe(0);
    const seen = onlyJson<Profile>(status.stdout);
    expect({ address: seen.address, owners: seen.owners, mode: seen.mode, backend: seen.backend }).toEqual({
      address: profile.address,
      owners: profile.owners,
      mode: profile.mode,
      backend: profile.backend,
    });
  });

  it("prints a readable summary on stdout without --json", async () => {
    const home = await tempHome();
    const result = await runCli(["setup", "--yes"], { GBT_HOME: home });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/Address\s+0x[0-9a-fA-F]{40}/);
    expect(result.stdout).toContain("embedded");
    expect(result.stdout).toMatch(/GPUs\s+none/);
  });

  it("answers bad input with a JSON error and its exit code", async () => {
    const home = await tempHome();
    const badOwner = await runCli(["setup", "--yes", "--json", "--owner", "0x123"], { GBT_HOME: home });
    expect(badOwner.exitCode).toBe(6);
    expect(onlyJson<{ error: { code: string } }>(badOwner.stdout).error.code).toBe("INVALID_ADDRESS");

    const usage = await runCli(["setup", "--no-such-flag"], { GBT_HOME: home });
    expect(usage.exitCode).toBe(2);
    expect(usage.stderr).toContain("no-such-flag");

    const notSetUp = await runCli(["status", "--json"], { GBT_HOME: home });
    expect(notSetUp.exitCode).toBe(3);
    expect(onlyJson<{ error: { code: string; hint: string } }>(notSetUp.stdout).error).toMatchObject({
      code: "NOT_SET_UP",
      hint: expect.stringContaining("gbt setup"),
    });
  });

  it("encrypts with GBT_PASSPHRASE, refuses a wrong one with the auth code, and never prints the secret", async () => {
    const home = await tempHome();
    const ok = await runCli(["setup", "--yes", "--json"], { GBT_HOME: home, GBT_PASSPHRASE: "hunter2-long" });
    expect(ok.exitCode).toBe(0);
    const keystore = await readFile(join(home, "config", "keys", "node.json"), "utf8");
    expect(JSON.parse(keystore).encrypted).toBe(true);
    const wrong = await runCli(["setup", "--yes", "--json"], {
      GBT_HOME: home,
      GBT_PASSPHRASE: "wrong-pass",
    });
    expect(wrong.exitCode).toBe(4);
    expect(wrong.stdout + wrong.stderr).not.toContain("wrong-pass");
    expect(await readFile(join(home, "config", "keys", "node.json"), "utf8")).toBe(keystore);
  });

  it("imports the node key from GBT_NODE_KEY and never echoes it", async () => {
    const home = await tempHome();
    const key = `0x${"3c".repeat(32)}`;
    const result = await runCli(["setup", "--yes", "--json"], { GBT_HOME: home, GBT_NODE_KEY: key });
    expect(result.exitCode).toBe(0);
    expect(onlyJson<Profile>(result.stdout).address).toBe(privateKeyToAccount(key as `0x${string}`).address);
    expect(result.stdout + result.stderr).not.toContain("3c".repeat(32));
  });

  it("names the bad field of a hand-edited config with the config exit code", async () => {
    const home = await tempHome();
    await runCli(["setup", "--yes"], { GBT_HOME: home });
    const path = join(home, "config", "config.json");
    const config = JSON.parse(await readFile(path, "utf8"));
    config.node.mode = "turbo";
    await writeFile(path, JSON.stringify(config));
    const result = await runCli(["status"], { GBT_HOME: home });
    expect(result.exitCode).toBe(3);
    expect(result.stderr).toContain(path);
    expect(result.stderr).toContain("node.mode");
  });

  it("says so when GBT_HOME is not writable", async () => {
    const home = await tempHome();
    const file = join(home, "file");
    await writeFile(file, "");
    const result = await runCli(["setup", "--yes", "--json"], { GBT_HOME: join(file, "x") });
    expect(result.exitCode).toBe(11);
    expect(onlyJson<{ error: { code: string } }>(result.stdout).error.code).toBe("NOT_WRITABLE");
  });
});
