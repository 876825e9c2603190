import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type SignedObject, verifyObject } from "@gbt/protocol";
import { describe, expect, it } from "vitest";
import { gbtBin, onlyJson, runCli, tempHome } from "../../testing/run-cli.js";

// The real CLI on the real embedded backend (the generated test model, one thread), kept small.
const FAST = ["--threads", "1", "--gen-tokens", "32", "--repetitions", "2", "--warmup", "1"];

interface Record {
  mode: string;
  recordId: string;
  node: string;
  model: { id: string; digest: string | null };
  backend: { kind: string; version: string | null };
  parameters: {
    genTokens: number;
    repetitions: number | null;
    promptTokens: number;
    maxConcurrency: number | null;
  };
  verdicts: { decodeTokPerSec: number; eligibleCapacity: number; meetsFloor: boolean; failUnder: unknown };
  results: { mode: string; levels?: { concurrency: number }[] };
}
type Signed = SignedObject<"BenchmarkRecord"> & { payload: Record };

async function setUpNode(): Promise<{ home: string; address: string }> {
  const home = await tempHome("gbt-bench-cli-");
  const setup = await runCli(["setup", "--yes", "--json"], { GBT_HOME: home });
  expect(setup.exitCode, setup.stderr).toBe(0);
  return { home, address: onlyJson<{ address: string }>(setup.stdout).address };
}

async function history(home: string): Promise<Signed[]> {
  const result = await runCli(["node", "benchmark", "history", "--json"], { GBT_HOME: home });
  expect(result.exitCode, result.stderr).toBe(0);
  return onlyJson<Signed[]>(result.stdout);
}

describe("gbt node benchmark (real CLI process, embedded test model, no TTY)", () => {
  it("--json on a fresh setup prints one signed record that @gbt/protocol verifies, and stores it", async () => {
    const { home, address } = await setUpNode();
    const result = await runCli(["node", "benchmark", "--json", ...FAST, "--prompt-tokens", "64"], {
      GBT_HOME: home,
    });
    expect(result.exitCode, result.stderr).toBe(0);
    const signed = onlyJson<Signed>(result.stdout);
    const verified = await verifyObject(signed, {
      kind: "BenchmarkRecord",
      chainId: 31337,
      allowedSigners: [address as `0x${string}`],
    });
    expect(verified.message.node).toBe(address);
    expect(verified.message.modelDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(verified.message.decodeTokPerSecMilli).toBe(
      Math.round(signed.payload.verdicts.decodeTokPerSec * 1000),
    );
    expect(signed.payload).toMatchObject({
      mode: "micro",
      model: { id: "gbt-test-tiny" },
      backend: { kind: "embedded" },
      parameters: { genTokens: 32, repetitions: 2, promptTokens: 64 },
    });
    expect(signed.payload.verdicts.decodeTokPerSec).toBeGreaterThan(0);
    // Flags map onto the options: the progress went to stderr, not stdout.
    expect(result.stderr).not.toContain("{");
    const stored = await history(home);
    expect(stored.map((r) => r.payload.recordId)).toEqual([signed.payload.recordId]);
    expect(stored[0]).toEqual(signed);
  });

  it("prints a readable table, progress on stderr, and --compare deltas; serve mode sweeps", async () => {
    const { home } = await setUpNode();
    const first = await runCli(["node", "benchmark", ...FAST], { GBT_HOME: home });
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/TTFT\s+[\d.]+/);
    expect(first.stdout).toMatch(/decode\s+[\d.]+/);
    expect(first.stdout).toContain("verdict: meets the 5 tok/s per-stream floor");
    expect(first.stderr).toMatch(/\[#+-*\]\s+\d+%\s+measure/);
    const second = await runCli(["node", "benchmark", ...FAST, "--compare"], { GBT_HOME: home });
    expect(second.exitCode, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/compared with [0-9a-f-]{36}/);
    expect(second.stdout).toMatch(/decode \(higher is better\)/);

    const serve = await runCli(
      [
        "node",
        "benchmark",
        "--json",
        "--mode",
        "serve",
        "--threads",
        "1",
        "--gen-tokens",
        "16",
        "--max-concurrency",
        "2",
      ],
      { GBT_HOME: home },
    );
    expect(serve.exitCode, serve.stderr).toBe(0);
    const record = onlyJson<Signed>(serve.stdout).payload;
    expect(record.results.levels?.map((l) => l.concurrency)).toEqual(
      [1, 2].slice(0, record.results.levels?.length),
    );
    expect(record.parameters.maxConcurrency).toBe(2);
    const list = await runCli(["node", "benchmark", "history"], { GBT_HOME: home });
    expect(list.stdout.split("\n").filter((line) => /micro|serve/.test(line))).toHaveLength(3);
  });

  it("--fail-under: exit 10 after storing and printing the record (stdout still one JSON document)", async () => {
    const { home } = await setUpNode();
    const result = await runCli(["node", "benchmark", "--json", ...FAST, "--fail-under", "1000000000"], {
      GBT_HOME: home,
    });
    expect(result.exitCode).toBe(10);
    const signed = onlyJson<Signed>(result.stdout);
    expect(signed.payload.verdicts.failUnder).toEqual({ thresholdTokPerSec: 1e9, passed: false });
    await expect(verifyObject(signed, { kind: "BenchmarkRecord", chainId: 31337 })).resolves.toBeTruthy();
    expect(result.stderr).toContain("below --fail-under");
    expect((await history(home)).map((r) => r.payload.recordId)).toEqual([signed.payload.recordId]);

    const human = await runCli(["node", "benchmark", ...FAST, "--fail-under", "1e9"], { GBT_HOME: home });
    expect(human.exitCode).toBe(10);
    expect(human.stdout).toContain("--fail-under 1000000000 tok/s: FAILED");
    const passing = await runCli(["node", "benchmark", "--json", ...FAST, "--fail-under", "0.5"], {
      GBT_HOME: home,
    });
    expect(passing.exitCode, passing.stderr).toBe(0);
  });

  it("bad input: a clear error, its exit code, nothing stored", async () => {
    const { home } = await setUpNode();
    const env = { GBT_HOME: home };
    const zero = await runCli(["node", "benchmark", "--mode", "serve", "--max-concurrency", "0"], env);
    expect(zero.exitCode).toBe(2);
    expect(zero.stderr).toContain("max-concurrency");

    const model = await runCli(["node", "benchmark", "--json", ...FAST, "--model", "no-such-model"], env);
    expect(model.exitCode).toBe(8);
    expect(onlyJson<{ error: { code: string } }>(model.stdout).error.code).toBe("MODEL_NOT_FOUND");

    const context = await runCli(["node", "benchmark", "--json", ...FAST, "--prompt-tokens", "5000"], env);
    expect(context.exitCode).toBe(6);
    expect(onlyJson<{ error: { code: string; hint: string } }>(context.stdout).error).toMatchObject({
      code: "CONTEXT_LENGTH_EXCEEDED",
      hint: expect.stringContaining("--prompt-tokens"),
    });

    const badThreshold = await runCli(["node", "benchmark", "--fail-under", "fast"], env);
    expect(badThreshold.exitCode).toBe(2);

    const configPath = join(home, "config", "config.json");
    const config = JSON.parse(await readFile(configPath, "utf8"));
    await writeFile(
      configPath,
      JSON.stringify({ ...config, backend: { kind: "ollama", url: "http://127.0.0.1:1", model: "llama3" } }),
    );
    const unreachable = await runCli(["node", "benchmark", "--json"], env);
    expect(unreachable.exitCode).toBe(5);
    expect(onlyJson<{ error: { code: string } }>(unreachable.stdout).error.code).toBe("BACKEND_UNREACHABLE");

    expect(await history(home)).toEqual([]);
  });

  it("Ctrl-C stops cleanly: exit 130, nothing stored", async () => {
    const { home } = await setUpNode();
    const child = spawn(
      process.execPath,
      [
        gbtBin,
        "node",
        "benchmark",
        "--threads",
        "1",
        "--gen-tokens",
        "256",
        "--prompt-tokens",
        "128",
        "--repetitions",
        "200",
      ],
      {
        env: { ...process.env, GBT_HOME: home, CI: "true", GBT_PASSPHRASE: "" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stderr = "";
    let stdout = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    await new Promise<void>((resolve) => {
      child.stderr.on("data", (chunk) => {
        stderr += chunk;
        if (stderr.includes("measure")) resolve();
      });
      child.on("exit", () => resolve());
    });
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    expect(stderr).toContain("interrupted");
    expect(stdout).toBe("");
    expect(await history(home)).toEqual([]);
  });

  it("--help lists every metric's definition and the examples", async () => {
    const help = await runCli(["node", "benchmark", "--help"]);
    expect(help.exitCode).toBe(0);
    for (const text of [
      "TTFT (ms)",
      "TPOT (ms)",
      "(output tokens − 1)",
      "ITL (ms)",
      "system (tok/s)",
      "--fail-under",
    ]) {
      expect(help.stdout).toContain(text);
    }
    const historyHelp = await runCli(["node", "benchmark", "history", "--help"]);
    expect(historyHelp.stdout).toContain("--limit");
  });
});
