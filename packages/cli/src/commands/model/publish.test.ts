import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyJson, runCli, tempHome } from "../../testing/run-cli.js";
import { type GbtProcess, startGbtProcess } from "../../testing/serve-process.js";

const key = generatePrivateKey();
const publisher = privateKeyToAccount(key);

const manifestYaml = (extra = "") => `# A model manifest, as a publisher's repository holds it.
name: tiny-chat
version: 1.0.0
artifacts:
  - path: dist/model.gguf
  - path: dist/tokenizer.json
    role: tokenizer
license:
  spdx: Apache-2.0
  claims: { commercialUse: true, attributionRequired: true }
runtime: { format: gguf, quantization: F16, backends: [embedded, ollama] }
vramBand: { minMiB: 0, maxMiB: 512 }
contextWindow: 2048
intendedUse:
  summary: Pipeline tests.
  tasks: [chat]
${extra}`;

// biome-ignore lint/suspicious/noExplicitAny: tests read deep into untyped JSON output.
type Json = Record<string, any>;

describe("gbt model publish / verify / list / approve / delist against a real `gbt gateway serve` (CI=true, no TTY)", {
  timeout: 240_000,
}, () => {
  let gatewayHome: string;
  let work: string;
  let gateway: GbtProcess;
  let url: string;
  /** The first publish of model.yaml, shared: each test can run alone (`-t`) or after the others. */
  let firstPublish: ReturnType<typeof runCli> | undefined;
  const publishOnce = () => {
    firstPublish ??= runCli(["model", "publish", join(work, "model.yaml"), "--json"], ci());
    return firstPublish;
  };
  const ci = () => ({
    GBT_HOME: work,
    GBT_PUBLISHER_KEY: key,
    GBT_GATEWAY_URL: url,
    GBT_GATEWAY_ADMIN_TOKEN: "",
  });

  beforeAll(async () => {
    gatewayHome = await tempHome("gbt-registry-gw-");
    gateway = await startGbtProcess(["gateway", "serve", "--port", "0", "--json", "--log-level", "warn"], {
      GBT_HOME: gatewayHome,
    });
    url = String(gateway.first.url);
    work = await tempHome("gbt-publisher-");
    await mkdir(join(work, "dist"));
    await writeFile(join(work, "dist", "model.gguf"), randomBytes(3 * 1024 * 1024));
    await writeFile(join(work, "dist", "tokenizer.json"), '{"tokens":[]}');
    await writeFile(join(work, "model.yaml"), manifestYaml());
  }, 120_000);

  afterAll(async () => {
    await gateway?.stop("SIGKILL");
  });

  it("publishes from the environment's key, idempotently, and verify passes afterwards", async () => {
    const manifest = join(work, "model.yaml");
    const first = await publishOnce();
    expect(first.exitCode, first.stderr).toBe(0);
    const published = onlyJson<Json>(first.stdout);
    expect(published).toMatchObject({
      ref: "tiny-chat@1.0.0",
      outcome: "created",
      status: "pending",
      publisher: publisher.address,
    });
    expect(published.signed.payload.artifacts[0]).toMatchObject({
      size: 3 * 1024 * 1024,
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    // Hashing progress goes to stderr only in human mode; --json keeps stderr quiet and stdout one document.
    expect(first.stderr).not.toMatch(/hashing/);

    const again = await runCli(["model", "publish", manifest], ci());
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^Already published \(same content\) tiny-chat@1\.0\.0/);
    expect(again.stderr).toMatch(/hashing dist\/model\.gguf/);
    expect(again.stdout).not.toMatch(/hashing/);

    const verifyFile = await runCli(["model", "verify", manifest, "--json"], ci());
    expect(verifyFile.exitCode, verifyFile.stderr).toBe(0);
    expect(onlyJson<Json>(verifyFile.stdout)).toMatchObject({
      ref: "tiny-chat@1.0.0",
      source: "registry",
      status: "pending",
      publisher: publisher.address,
      artifacts: [{ status: "verified" }, { status: "verified" }],
    });
    const verifyRef = await runCli(
      ["model", "verify", "tiny-chat@1.0.0", "--dir", work, "--publisher", publisher.address],
      ci(),
    );
    expect(verifyRef.exitCode, verifyRef.stderr).toBe(0);
    expect(verifyRef.stdout).toMatch(/^Verified tiny-chat@1\.0\.0: signed by/);

    const list = await runCli(["model", "list", "--json"], ci());
    expect(onlyJson<Json[]>(list.stdout)).toEqual([
      expect.objectContaining({ name: "tiny-chat", version: "1.0.0", status: "pending", artifacts: 2 }),
    ]);
  });

  it("same version with other content is a conflict (exit 9); a wrong key exits 4; bad input is named", async () => {
    expect((await publishOnce()).exitCode).toBe(0);
    const changed = join(work, "changed.yaml");
    await writeFile(changed, manifestYaml().replace("contextWindow: 2048", "contextWindow: 4096"));
    const conflict = await runCli(["model", "publish", changed, "--json"], ci());
    expect(conflict.exitCode).toBe(9);
    expect(onlyJson<Json>(conflict.stdout).error.code).toBe("CONFLICT");

    const otherKey = generatePrivateKey();
    const named = join(work, "named.yaml");
    await writeFile(named, manifestYaml(`publisher: "${publisher.address}"\n`).replace("1.0.0", "1.0.1"));
    const wrongKey = await runCli(["model", "publish", named, "--json"], {
      ...ci(),
      GBT_PUBLISHER_KEY: otherKey,
    });
    expect(wrongKey.exitCode).toBe(4);
    expect(onlyJson<Json>(wrongKey.stdout).error.code).toBe("SIGNER_MISMATCH");
    expect(wrongKey.stdout).not.toContain(otherKey.slice(2));

    const pinned = await runCli(
      [
        "model",
        "verify",
        "tiny-chat@1.0.0",
        "--dir",
        work,
        "--publisher",
        privateKeyToAccount(otherKey).address,
        "--json",
      ],
      ci(),
    );
    expect([pinned.exitCode, onlyJson<Json>(pinned.stdout).error.code]).toEqual([4, "UNKNOWN_SIGNER"]);

    const noKey = await runCli(["model", "publish", named, "--json"], { ...ci(), GBT_PUBLISHER_KEY: "" });
    expect([noKey.exitCode, onlyJson<Json>(noKey.stdout).error.code]).toEqual([2, "MISSING_INPUT"]);

    const bad = join(work, "bad.yaml");
    await writeFile(bad, "name: tiny chat\nversion: 1\nartifacts:\n  - path: ../../etc/passwd\n");
    const invalid = await runCli(["model", "publish", bad, "--json"], ci());
    expect(invalid.exitCode).toBe(6);
    const error = onlyJson<Json>(invalid.stdout).error;
    expect(error.code).toBe("MANIFEST_INVALID");
    expect(error.details.issues.map((i: Json) => i.path)).toEqual(
      expect.arrayContaining(["$.name", "$.version", "$.artifacts[0].path", "$.license", "$.runtime"]),
    );
  });

  it("a changed byte in an artifact fails verify (exit 6)", async () => {
    expect((await publishOnce()).exitCode).toBe(0);
    const signedPath = join(work, "signed.json");
    const dry = await runCli(
      ["model", "publish", join(work, "model.yaml"), "--dry-run", "--out", signedPath],
      ci(),
    );
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout)).toEqual(JSON.parse(await readFile(signedPath, "utf8")));
    // Flags → options: a hex key file instead of the environment, another chain, SOURCE_DATE_EPOCH.
    const keyFile = join(work, "publisher.key");
    await writeFile(keyFile, `${key}\n`, { mode: 0o600 });
    const flagged = await runCli(
      [
        "model",
        "publish",
        join(work, "model.yaml"),
        "--dry-run",
        "--key-file",
        keyFile,
        "--chain-id",
        "5",
        "--json",
      ],
      { ...ci(), GBT_PUBLISHER_KEY: "", SOURCE_DATE_EPOCH: "1700000000" },
    );
    expect(flagged.exitCode, flagged.stdout).toBe(0);
    expect(onlyJson<Json>(flagged.stdout)).toMatchObject({
      outcome: "dry-run",
      gateway: null,
      publisher: publisher.address,
      signed: { domain: { chainId: 5 }, payload: { createdAt: "2023-11-14T22:13:20Z" } },
    });
    expect(flagged.stdout).not.toContain(key.slice(2));
    expect((await runCli(["model", "verify", signedPath], ci())).exitCode).toBe(0);
    const file = join(work, "dist", "model.gguf");
    const bytes = await readFile(file);
    bytes[1234] = (bytes[1234] as number) ^ 1;
    await writeFile(file, bytes);
    for (const target of [signedPath, join(work, "model.yaml")]) {
      const broken = await runCli(["model", "verify", target, "--json"], ci());
      expect(broken.exitCode).toBe(6);
      expect(onlyJson<Json>(broken.stdout).error).toMatchObject({
        code: "ARTIFACT_MISMATCH",
        details: { path: "$.artifacts[0]" },
      });
    }
    bytes[1234] = (bytes[1234] as number) ^ 1;
    await writeFile(file, bytes);
  });

  it("an admin approves and delists with the gateway's token", async () => {
    expect((await publishOnce()).exitCode).toBe(0);
    const noToken = await runCli(["model", "approve", "tiny-chat@1.0.0", "--json"], ci());
    expect(noToken.exitCode).toBe(2);
    const token = join(gatewayHome, "data", "gateway", "admin-token");
    const wrong = join(work, "wrong-token");
    await writeFile(wrong, "not-the-token");
    const refused = await runCli(
      ["model", "approve", "tiny-chat@1.0.0", "--admin-token-file", wrong, "--json"],
      ci(),
    );
    expect(refused.exitCode).toBe(4);
    const approved = await runCli(
      ["model", "approve", "tiny-chat@1.0.0", "--admin-token-file", token, "--reason", "reviewed", "--json"],
      ci(),
    );
    expect(approved.exitCode, approved.stdout).toBe(0);
    expect(onlyJson<Json>(approved.stdout)).toMatchObject({ status: "approved", statusReason: "reviewed" });
    // The gateway's own machine finds the token by itself.
    const delisted = await runCli(["model", "delist", "tiny-chat@1.0.0"], { ...ci(), GBT_HOME: gatewayHome });
    expect([delisted.exitCode, delisted.stdout.trim()]).toEqual([0, "tiny-chat@1.0.0 is delisted"]);
    const back = await runCli(["model", "approve", "tiny-chat@1.0.0", "--json"], {
      ...ci(),
      GBT_HOME: gatewayHome,
    });
    expect([back.exitCode, onlyJson<Json>(back.stdout).error.code]).toEqual([9, "CONFLICT"]);
    const missing = await runCli(["model", "approve", "nope@1", "--json"], {
      ...ci(),
      GBT_HOME: gatewayHome,
    });
    expect(missing.exitCode).toBe(8);
  });
});
