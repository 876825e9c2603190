import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { generateTestModel } from "@gbt/node";
import { type ArtifactServer, startArtifactServer } from "@gbt/node/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyJson, runCli, tempHome } from "../../testing/run-cli.js";

const FILE = "/models/tiny.gguf";

describe("gbt model pull (a real child process against a loopback artifact server)", {
  timeout: 120_000,
}, () => {
  let server: ArtifactServer;
  let sha256: string;
  let size: number;

  beforeAll(async () => {
    const scratch = await tempHome("gbt-pull-src-");
    await generateTestModel(join(scratch, "tiny.gguf"), { shape: "tiny" });
    const bytes = await readFile(join(scratch, "tiny.gguf"));
    sha256 = createHash("sha256").update(bytes).digest("hex");
    size = bytes.length;
    server = await startArtifactServer({ files: { [FILE]: bytes } });
  });
  afterAll(async () => {
    await server.close();
  });

  it("--json: a URL with --sha256 is installed, the result names id, path, sha256, bytes and source", async () => {
    const home = await tempHome();
    const url = `${server.url}${FILE}`;
    const run = await runCli(
      ["model", "pull", url, "--sha256", sha256, "--as", "tiny-1", "--allow-loopback-http", "--json"],
      { GBT_HOME: home },
    );
    expect(run.exitCode).toBe(0);
    const result = onlyJson(run.stdout);
    const path = join(home, "data", "models", "tiny-1.gguf");
    expect(result).toMatchObject({
      id: "tiny-1",
      path,
      sha256,
      bytes: size,
      source: url,
      alreadyPresent: false,
    });
    expect(
      createHash("sha256")
        .update(await readFile(path))
        .digest("hex"),
    ).toBe(sha256);
  });

  it("wrong bytes: exit 6 with ARTIFACT_MISMATCH as JSON, the models dir left empty", async () => {
    const home = await tempHome();
    server.setFaults(FILE, { wrongBytes: true });
    try {
      const run = await runCli(
        ["model", "pull", `${server.url}${FILE}`, "--sha256", sha256, "--allow-loopback-http", "--json"],
        { GBT_HOME: home },
      );
      expect(run.exitCode).toBe(6);
      expect(onlyJson<{ error: { code: string } }>(run.stdout).error.code).toBe("ARTIFACT_MISMATCH");
      expect(await readdir(join(home, "data", "models"))).toEqual([]);
    } finally {
      server.setFaults(FILE, {});
    }
  });

  it("a URL without --sha256 is a usage error naming the flag; plain http needs the explicit allow", async () => {
    const home = await tempHome();
    const missing = await runCli(["model", "pull", `${server.url}${FILE}`, "--allow-loopback-http"], {
      GBT_HOME: home,
    });
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain("--sha256");
    const http = await runCli(["model", "pull", `${server.url}${FILE}`, "--sha256", sha256], {
      GBT_HOME: home,
    });
    expect(http.exitCode).toBe(6);
    expect(http.stderr).toContain("not https");
  });

  it("an unreachable host: exit 5 with a hint", async () => {
    const home = await tempHome();
    const run = await runCli(
      ["model", "pull", "http://127.0.0.1:1/x.gguf", "--sha256", sha256, "--allow-loopback-http"],
      { GBT_HOME: home },
    );
    expect(run.exitCode).toBe(5);
    expect(run.stderr).toContain("Cannot reach 127.0.0.1:1");
    expect(run.stderr).toContain("→");
  });

  it("progress goes to stderr, the result line to stdout", async () => {
    const home = await tempHome();
    const run = await runCli(
      ["model", "pull", `${server.url}${FILE}`, "--sha256", sha256, "--allow-loopback-http"],
      { GBT_HOME: home },
    );
    expect(run.exitCode).toBe(0);
    expect(run.stdout.trim().split("\n")).toHaveLength(1);
    expect(run.stdout).toContain("Installed tiny:");
    expect(run.stderr).toContain("tiny");
    expect(run.stderr).toContain("MiB");
  });
});
