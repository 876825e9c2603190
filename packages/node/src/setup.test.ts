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

describe("setupNode: GPU and cloud-account backends", () => {
  const apiKey = "sk-test-0123456789abcdef-secret";

  it("an explicit --gpu that cannot run here fails with GPU_UNAVAILABLE and writes nothing", async () => {
    const paths = await home();
    const error = await setup(paths, { gpu: "cuda" }).catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe("GPU_UNAVAILABLE");
    await expect(stat(paths.configFile)).rejects.toThrow();
    await expect(stat(paths.nodeKeystore)).rejects.toThrow();
  });

  it("records gpu and gpuLayers in the config and reports what the backend will use", async () => {
    const paths = await home();
    const { profile } = await setup(paths, { gpu: "off", gpuLayers: 12 });
    expect(profile.backend).toMatchObject({ kind: "embedded", gpu: "off", gpuLayers: 12 });
    expect(profile.gpu?.summary).toBe("CPU inference: the GPU is turned off (--gpu off).");
    const auto = await setup(await home());
    expect(auto.profile.gpu).toMatchObject({ requested: "auto", backend: "cpu" });
    expect(auto.profile.gpu?.summary).toMatch(/^CPU inference: /);
  });

  it("stores the API key encrypted with the node's passphrase (0600), never in the profile", async () => {
    const paths = await home();
    const keyFile = join(paths.configDir, "..", "api-key.txt");
    await writeFile(keyFile, `${apiKey}\n`);
    const { profile, changes, warnings } = await setup(paths, {
      backend: "openai",
      backendUrl: "http://127.0.0.1:9/v1",
      backendApiKeyFile: keyFile,
      passphrase: "correct horse",
    });
    expect(warnings).toEqual([]);
    expect(profile.backendApiKey).toEqual({
      path: join(paths.configDir, "backend-api-key.json"),
      encrypted: true,
    });
    expect(profile.backend.apiKeyFile).toBe(profile.backendApiKey?.path);
    expect(profile.gpu).toBeNull();
    const stored = await readFile(join(paths.configDir, "backend-api-key.json"), "utf8");
    expect(stored).not.toContain(apiKey);
    expect((await stat(join(paths.configDir, "backend-api-key.json"))).mode & 0o777).toBe(0o600);
    expect(JSON.stringify({ profile, changes })).not.toContain(apiKey);
    expect(await readFile(paths.configFile, "utf8")).not.toContain(apiKey);

    // The same key again: nothing changes on disk.
    const again = await setup(paths, {
      backend: "openai",
      backendApiKeyFile: keyFile,
      passphrase: "correct horse",
    });
    expect(again.changes).toEqual([]);
    expect(await readFile(join(paths.configDir, "backend-api-key.json"), "utf8")).toBe(stored);
  });

  it("without a passphrase the key is stored unencrypted (0600) and setup says so", async () => {
    const paths = await home();
    const keyFile = join(paths.configDir, "..", "api-key.txt");
    await writeFile(keyFile, apiKey);
    const { profile, warnings } = await setup(paths, { backend: "openai", backendApiKeyFile: keyFile });
    expect(profile.backendApiKey?.encrypted).toBe(false);
    expect(warnings).toEqual([expect.stringMatching(/stored unencrypted \(mode 0600\).*no passphrase/)]);
    expect(warnings.join("")).not.toContain(apiKey);
  });

  it("refuses the key file with a backend other than openai, and a file of several words without echoing it", async () => {
    const paths = await home();
    const keyFile = join(paths.configDir, "..", "api-key.txt");
    await writeFile(keyFile, `${apiKey} second-word`);
    const wrongBackend = await setup(paths, { backendApiKeyFile: keyFile }).catch((e: unknown) => e);
    expect((wrongBackend as { code?: string }).code).toBe("USAGE");
    const bad = await setup(paths, { backend: "openai", backendApiKeyFile: keyFile }).catch(
      (e: unknown) => e,
    );
    expect((bad as { code?: string }).code).toBe("INVALID_INPUT");
    expect(JSON.stringify(bad) + String((bad as Error).message)).not.toContain(apiKey);
  });
});
