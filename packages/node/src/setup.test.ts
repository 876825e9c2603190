import { mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readKeystore } from "@gbt/protocol";
import { resolvePaths } from "@gbt/store";
import { getAddress } from "viem";
import { describe, expect, it } from "vitest";
import type { DetectedBackend } from "./detect-backends.js";
import type { HardwareProfile } from "./hardware.js";
import { type SetupParameters, setupNode } from "./setup.js";
import { nodeStatus } from "./status.js";

const owner = "0x8ba1f109551bD432803012645Ac136ddd64DBA72";
const hardware = { gpus: [] } as unknown as HardwareProfile;
const detected: DetectedBackend[] = [];
const probes = { probeHardware: async () => hardware, detectBackends: async () => detected };

async function home() {
  const dir = await mkdtemp(join(tmpdir(), "gbt-setup-"));
  return resolvePaths({ GBT_HOME: dir });
}

function setup(paths: ReturnType<typeof resolvePaths>, extra: Partial<SetupParameters> = {}) {
  return setupNode({ paths, ...probes, ...extra });
}

async function snapshot(paths: ReturnType<typeof resolvePaths>) {
  return {
    keystore: await readFile(paths.nodeKeystore, "utf8"),
    config: await readFile(paths.configFile, "utf8"),
    configMtime: (await stat(paths.configFile)).mtimeMs,
  };
}

describe("setupNode", () => {
  it("creates an identity, config and database in an empty GBT_HOME, local mode, embedded backend", async () => {
    const paths = await home();
    const { profile, changes } = await setup(paths, { owners: [owner.toLowerCase()] });
    expect(profile.address).toMatch(/^0x[0-9a-fA-F]{40}$/);
    expect(profile.owners).toEqual([owner]);
    expect(profile.mode).toBe("local");
    expect(profile.backend.kind).toBe("embedded");
    expect(changes.length).toBeGreaterThan(0);
    expect((await stat(paths.nodeKeystore)).mode & 0o777).toBe(0o600);
    expect((await readKeystore(paths.nodeKeystore)).address).toBe(profile.address);
    expect((await stat(paths.nodeDatabase)).isFile()).toBe(true);
  });

  it("is idempotent: a second run changes nothing on disk and reports no changes", async () => {
    const paths = await home();
    const first = await setup(paths, { owners: [owner] });
    const before = await snapshot(paths);
    const second = await setup(paths, { owners: [owner] });
    expect(second.changes).toEqual([]);
    expect(second.profile.address).toBe(first.profile.address);
    expect(await snapshot(paths)).toEqual(before);
    expect((await nodeStatus({ paths, ...probes })).address).toBe(first.profile.address);
  });

  it("never replaces an identity without --force", async () => {
    const paths = await home();
    const first = await setup(paths);
    const other = `0x${"77".repeat(32)}` as const;
    await expect(setup(paths, { importKey: other })).rejects.toMatchObject({ code: "ALREADY_EXISTS" });
    expect((await readKeystore(paths.nodeKeystore)).address).toBe(first.profile.address);
    const forced = await setup(paths, { importKey: other, force: true });
    expect(forced.profile.address).not.toBe(first.profile.address);
    expect(forced.changes.join()).toContain("replaced");
  });

  it("imports a key and encrypts it with a passphrase; a wrong passphrase later is an auth error and leaves the keystore untouched", async () => {
    const paths = await home();
    const key = `0x${"42".repeat(32)}` as const;
    const { profile } = await setup(paths, { importKey: key, passphrase: "s3cret" });
    expect(profile.keystore.encrypted).toBe(true);
    const before = await snapshot(paths);
    await expect(setup(paths, { passphrase: "wrong" })).rejects.toMatchObject({
      code: "WRONG_PASSPHRASE",
      exitCode: 4,
    });
    expect(await snapshot(paths)).toEqual(before);
    await expect(setup(paths, { passphrase: "s3cret" })).resolves.toMatchObject({ changes: [] });
  });

  it("refuses an invalid owner address before writing anything", async () => {
    const paths = await home();
    await expect(setup(paths, { owners: [owner, "0xnot-an-address"] })).rejects.toMatchObject({
      code: "INVALID_ADDRESS",
      exitCode: 6,
    });
    await expect(stat(paths.configDir)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("names the file and the bad field of a hand-edited config, with the config exit code", async () => {
    const paths = await home();
    await setup(paths);
    const config = JSON.parse(await readFile(paths.configFile, "utf8"));
    config.backend.threads = "many";
    await writeFile(paths.configFile, JSON.stringify(config));
    const error = await setup(paths).catch((e) => e);
    expect(error).toMatchObject({ code: "CONFIG_INVALID", exitCode: 3 });
    expect(error.message).toContain(paths.configFile);
    expect(error.message).toContain("backend.threads");
    await expect(nodeStatus({ paths, ...probes })).rejects.toMatchObject({ code: "CONFIG_INVALID" });
    await writeFile(paths.configFile, "{ truncated");
    await expect(nodeStatus({ paths, ...probes })).rejects.toMatchObject({ code: "CONFIG_INVALID" });
  });

  it("says so when GBT_HOME is not writable", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gbt-setup-"));
    const file = join(dir, "a-file");
    await writeFile(file, "");
    const paths = resolvePaths({ GBT_HOME: join(file, "home") });
    const error = await setup(paths).catch((e) => e);
    expect(error).toMatchObject({ code: "NOT_WRITABLE", exitCode: 11 });
    expect(error.message).toContain(join(file, "home"));
  });

  it("accumulates owners across runs and keeps the backend unless asked", async () => {
    const paths = await home();
    await setup(paths, { owners: [owner] });
    const second = "0x0000000000000000000000000000000000000Abc";
    const { profile } = await setup(paths, { owners: [second], backend: "ollama" });
    expect(profile.owners).toEqual([owner, getAddress(second)]);
    expect(profile.backend).toEqual({ kind: "ollama", url: "http://127.0.0.1:11434" });
    const { profile: again } = await setup(paths);
    expect(again.backend.kind).toBe("ollama");
    await expect(setup(paths, { backendUrl: "http://x" })).rejects.toMatchObject({ code: "USAGE" });
    const before = await readFile(paths.configFile, "utf8");
    await expect(setup(paths, { backend: "openai", backendUrl: "file:///etc/passwd" })).rejects.toMatchObject(
      {
        code: "INVALID_INPUT",
        message: expect.stringContaining("--backend-url"),
      },
    );
    expect(await readFile(paths.configFile, "utf8")).toBe(before);
  });

  it("status without setup says to run setup", async () => {
    const paths = await home();
    await expect(nodeStatus({ paths, ...probes })).rejects.toMatchObject({ code: "NOT_SET_UP", exitCode: 3 });
  });
});
