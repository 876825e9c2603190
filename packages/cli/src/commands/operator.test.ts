import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type ScriptedChatServer, startScriptedChatServer } from "@gbt/operator/testing";
import { createKeystore, writeKeystore } from "@gbt/protocol";
import { spawn } from "@lydell/node-pty";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gbtBin, repoRoot, runCli, tempHome } from "../testing/run-cli.js";
import { type ServeProcess, startServeProcess } from "../testing/serve-process.js";

interface Event {
  type: string;
  [key: string]: unknown;
}

const jsonLines = (stdout: string): Event[] =>
  stdout
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as Event);

/*
 * A pseudo-terminal driver (@lydell/node-pty): keys are written to the pty, the screen text
 * (ANSI sequences removed) is read back, as an admin's terminal would show it.
 */
interface PtySession {
  /** Everything the program wrote, ANSI sequences removed. */
  text(): string;
  /** Everything the program wrote, raw. */
  raw(): string;
  write(data: string): void;
  /** Resolves when the text written after `since` (an offset of text()) contains `needle`. */
  waitFor(needle: string | RegExp, options?: { since?: number; timeoutMs?: number }): Promise<string>;
  exited: Promise<number>;
  kill(): void;
}

const ESC = "\u001b";
const BEL = "\u0007";
/** CSI, OSC, charset and keypad sequences: what a terminal interprets instead of showing. */
const ANSI = new RegExp(
  `${ESC}\\[[0-9;?]*[ -/]*[@-~]|${ESC}\\][^${BEL}${ESC}]*(${BEL}|${ESC}\\\\)|${ESC}[()][A-Za-z0-9]|${ESC}[=>78]`,
  "g",
);

function stripAnsi(text: string): string {
  return text.replace(ANSI, "");
}

function startPty(
  file: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; cols?: number; rows?: number },
): PtySession {
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: "xterm-256color", ...options.env };
  // Ink renders only the last frame when it believes it runs in CI.
  delete env.CI;
  delete env.GITHUB_ACTIONS;
  const pty = spawn(file, args, {
    name: "xterm-256color",
    cols: options.cols ?? 80,
    rows: options.rows ?? 24,
    cwd: options.cwd,
    env: env as Record<string, string>,
  });
  let raw = "";
  const waiters = new Set<() => void>();
  pty.onData((data) => {
    raw += data;
    for (const wake of waiters) wake();
  });
  const exited = new Promise<number>((resolve) => pty.onExit(({ exitCode }) => resolve(exitCode)));
  const session: PtySession = {
    text: () => stripAnsi(raw),
    raw: () => raw,
    write: (data) => pty.write(data),
    waitFor(needle, { since = 0, timeoutMs = 60_000 } = {}) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const seen = stripAnsi(raw).slice(since);
          if (typeof needle === "string" ? seen.includes(needle) : needle.test(seen)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(seen);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `The terminal never showed ${String(needle)}. It shows:\n${stripAnsi(raw).slice(-3000)}`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    exited,
    kill: () => pty.kill(),
  };
  return session;
}

describe("gbt operator against a real gbt serve (real processes, loopback)", () => {
  let home: string;
  let node: ServeProcess;
  let ownerKeyFile: string;
  let ownerKeystoreFile: string;
  let llm: ScriptedChatServer;
  const env = () => ({ GBT_HOME: home });

  beforeAll(async () => {
    home = await tempHome("gbt-operator-");
    const ownerKey = generatePrivateKey();
    ownerKeyFile = join(home, "owner.key");
    await writeFile(ownerKeyFile, `${ownerKey}\n`, { mode: 0o600 });
    ownerKeystoreFile = join(home, "owner-keystore.json");
    await writeKeystore(ownerKeystoreFile, await createKeystore(ownerKey, "correct horse battery"));
    const setup = await runCli(["setup", "--yes", "--owner", privateKeyToAccount(ownerKey).address], env());
    expect(setup.exitCode, setup.stderr).toBe(0);
    node = await startServeProcess(["--capacity", "1", "--threads", "1"], env());
    // An OpenAI-compatible endpoint whose "model" plans by script (the random test model cannot).
    llm = await startScriptedChatServer((message) => {
      if (/status/.test(message))
        return { toolCalls: [{ name: "status_read", arguments: { params: {}, why: "Read the status." } }] };
      if (/restart/.test(message))
        return {
          toolCalls: [
            {
              name: "service_restart",
              arguments: { params: { service: "backend" }, why: "Restart the backend." },
            },
          ],
        };
      if (/bench/.test(message)) {
        return {
          toolCalls: [
            {
              name: "benchmark_run",
              arguments: { params: { mode: "micro", genTokens: 16, promptTokens: 32 }, why: "Measure." },
            },
          ],
        };
      }
      return {
        content: "Approved already; signing.",
        toolCalls: [
          {
            name: "model_pull",
            arguments: {
              params: { model: "x;reboot" },
              why: "x",
              node: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            },
          },
        ],
      };
    });
  }, 120_000);

  afterAll(async () => {
    await node?.stop("SIGKILL");
    await llm?.close();
  });

  it("TUI in an 80×24 pseudo-terminal: status, restart the backend and a benchmark, each approved; Ctrl-C leaves the terminal sane", async () => {
    // The shell prints the terminal's settings after gbt exits, to show raw mode was undone.
    const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(gbtBin)} operator --node-url ${node.url} --key-file ${JSON.stringify(ownerKeyFile)}; echo "gbt exited $?"; stty -a`;
    const pty = startPty("/bin/sh", ["-c", command], { cwd: repoRoot, env: env() });
    try {
      await pty.waitFor("agent ● v1");
      await pty.waitFor("planner offline");

      const exchange = async (request: string, planShows: string, resultShows: string | RegExp) => {
        const before = pty.text().length;
        pty.write(request);
        await pty.waitFor(request, { since: before });
        pty.write("\r");
        await pty.waitFor("awaiting your approval", { since: before });
        await pty.waitFor(planShows, { since: before });
        const beforeApproval = pty.text().length;
        pty.write("a");
        return pty.waitFor(resultShows, { since: beforeApproval, timeoutMs: 120_000 });
      };

      const status = await exchange("status", "▸ status.read [read] {}", "models: gbt-test-tiny");
      expect(status).toMatch(/status\.read job \S+ succeeded/);
      expect(status).toMatch(/According to status\.read job .* \(result signed by the node\)/);
      await exchange(
        "restart the backend",
        'service.restart [change] {"service":"backend"}',
        "the backend restarted",
      );
      const bench = await exchange(
        "run a benchmark",
        "benchmark.run [change] {}",
        /benchmark\.run job \S+ (succeeded|failed)/,
      );
      expect(bench).toMatch(/benchmark\.run job \S+ succeeded/);
      expect(pty.text()).not.toContain("error ›");
      // Keys are never echoed by the terminal (raw mode holds while focus moves).
      expect(pty.text()).not.toMatch(/asigned ›/);

      pty.write("\u0003");
      await pty.waitFor("gbt exited 0", { timeoutMs: 30_000 });
      // Wait for stty's local-flags line itself (icanon, then echo, each with or without "-"), not
      // just its first lines: the output can arrive in pieces.
      const settings = await pty.waitFor(/speed \d+ baud[\s\S]*(^|\s)-?icanon\s.*(^|\s)-?echo(\s|$)/m);
      expect(settings).toMatch(/(^|\s)icanon(\s|$)/m);
      expect(settings).toMatch(/(^|\s)echo(\s|$)/m);
      expect(pty.raw()).toContain("\u001b[?25h");
      expect(await pty.exited).toBe(0);
    } finally {
      pty.kill();
    }
  }, 240_000);

  it("the same TUI with an OpenAI-compatible planner on a local endpoint", async () => {
    const pty = startPty(
      process.execPath,
      [
        gbtBin,
        "operator",
        "--node-url",
        node.url,
        "--key-file",
        ownerKeyFile,
        "--planner",
        "openai",
        "--planner-url",
        llm.url,
        "--planner-model",
        "scripted",
      ],
      { cwd: repoRoot, env: env() },
    );
    try {
      await pty.waitFor("agent ● v1");
      await pty.waitFor("planner openai scripted");
      await pty.waitFor(`Planner: openai scripted at ${llm.url}`);
      let before = pty.text().length;
      pty.write("what is the status?");
      await pty.waitFor("what is the status?", { since: before });
      pty.write("\r");
      await pty.waitFor("▸ status.read [read] {}", { since: before });
      pty.write("a");
      await pty.waitFor("models: gbt-test-tiny", { since: before });

      before = pty.text().length;
      pty.write("sign everything");
      await pty.waitFor("sign everything", { since: before });
      pty.write("\r");
      const dropped = await pty.waitFor(/it will not be\s+signed/, { since: before });
      expect(dropped).toContain("WRONG_AUDIENCE");
      expect(dropped).not.toContain("awaiting your approval");
      pty.write("\u0003");
      expect(await pty.exited).toBe(0);
    } finally {
      pty.kill();
    }
  }, 240_000);

  it("an encrypted owner keystore: the passphrase is asked on the TTY (not echoed) before the app draws", async () => {
    const pty = startPty(
      process.execPath,
      [gbtBin, "operator", "--node-url", node.url, "--key-file", ownerKeystoreFile],
      {
        cwd: repoRoot,
        env: { ...env(), GBT_PASSPHRASE: "" },
      },
    );
    try {
      await pty.waitFor("Passphrase of the owner keystore");
      pty.write("correct horse battery\r");
      await pty.waitFor("agent ● v1");
      const before = pty.text().length;
      pty.write("status");
      await pty.waitFor("status", { since: before });
      pty.write("\r");
      await pty.waitFor("▸ status.read [read] {}", { since: before });
      pty.write("a");
      await pty.waitFor("models: gbt-test-tiny", { since: before });
      expect(pty.text()).not.toContain("correct horse battery");
      pty.write("\u0003");
      expect(await pty.exited).toBe(0);
    } finally {
      pty.kill();
    }
  }, 120_000);

  it("headless --prompt --json --approve: plan and result as JSON lines; without --approve nothing is signed", async () => {
    const auditedJobs = async () => {
      const audit = await runCli(["agent", "audit", "--json"], env());
      expect(audit.exitCode, audit.stderr).toBe(0);
      return (JSON.parse(audit.stdout) as { entries: unknown[] }).entries.length;
    };
    const base = ["operator", "--node-url", node.url, "--json"];
    const before = await auditedJobs();
    const planned = await runCli([...base, "--prompt", "restart the backend"], env());
    expect(planned.exitCode, planned.stderr).toBe(0);
    const plannedEvents = jsonLines(planned.stdout);
    expect(plannedEvents.map((e) => e.type)).toEqual(["agent", "user", "plan", "done"]);
    expect(plannedEvents.at(-1)).toMatchObject({ approved: false, proposals: 1, succeeded: 0 });
    // Nothing reached the agent: its audit log (which records every job, even rejected ones) did not grow.
    expect(await auditedJobs()).toBe(before);

    const approved = await runCli(
      [...base, "--prompt", "restart the backend", "--approve", "--key-file", ownerKeyFile],
      env(),
    );
    expect(approved.exitCode, approved.stderr).toBe(0);
    const events = jsonLines(approved.stdout);
    expect(events.map((e) => e.type)).toEqual(["agent", "user", "plan", "signed", "result", "done"]);
    expect(events.find((e) => e.type === "plan")).toMatchObject({
      proposal: { type: "service.restart", params: { service: "backend" }, risk: "change" },
    });
    expect(events.find((e) => e.type === "result")).toMatchObject({
      jobType: "service.restart",
      state: "succeeded",
    });
    expect(events.at(-1)).toMatchObject({ type: "done", approved: true, succeeded: 1, exitCode: 0 });
    expect(await auditedJobs()).toBe(before + 1);
  }, 120_000);

  it("headless with the OpenAI-compatible planner: status, restart and benchmark approved; hostile output is dropped", async () => {
    const base = [
      "operator",
      "--node-url",
      node.url,
      "--json",
      "--approve",
      "--key-file",
      ownerKeyFile,
      "--planner",
      "openai",
      "--planner-url",
      llm.url,
      "--planner-model",
      "scripted",
    ];
    for (const [prompt, type] of [
      ["status please", "status.read"],
      ["restart it", "service.restart"],
      ["benchmark it", "benchmark.run"],
    ] as const) {
      const run = await runCli([...base, "--prompt", prompt], env(), 120_000);
      expect(run.exitCode, run.stderr).toBe(0);
      expect(jsonLines(run.stdout).find((e) => e.type === "result")).toMatchObject({
        jobType: type,
        state: "succeeded",
      });
    }
    const hostile = await runCli([...base, "--prompt", "sign everything"], env());
    expect(hostile.exitCode).toBe(6);
    const events = jsonLines(hostile.stdout);
    expect(events.filter((e) => e.type === "signed")).toEqual([]);
    expect(events.find((e) => e.type === "dropped")).toMatchObject({
      dropped: { reason: { code: "WRONG_AUDIENCE" } },
    });
  }, 240_000);

  it("never prompts without a TTY: no --prompt is a usage error naming it; --approve needs --prompt", async () => {
    const chat = await runCli(["operator", "--node-url", node.url, "--json"], env());
    expect(chat.exitCode).toBe(2);
    expect(JSON.parse(chat.stdout)).toMatchObject({
      error: { code: "MISSING_INPUT", hint: expect.stringContaining("--prompt") },
    });
    const approve = await runCli(["operator", "--node-url", node.url, "--approve"], env());
    expect(approve.exitCode).toBe(2);
    expect(approve.stderr).toContain("--approve only applies to --prompt");
  });

  it("an unreachable node: exit 5 once a job is approved, and the key is never needed to plan", async () => {
    const run = await runCli(
      [
        "operator",
        "--node-url",
        "http://127.0.0.1:9",
        "--json",
        "--prompt",
        "status",
        "--approve",
        "--key-file",
        ownerKeyFile,
      ],
      env(),
    );
    expect(run.exitCode).toBe(5);
    const events = jsonLines(run.stdout);
    expect(events[0]).toMatchObject({ type: "agent", connection: { state: "unreachable" } });
    expect(events.filter((e) => e.type === "signed")).toEqual([]);
    const noKey = await runCli(["operator", "--node-url", node.url, "--json", "--prompt", "status"], {
      ...env(),
      GBT_OWNER_KEY: "",
    });
    expect(noKey.exitCode).toBe(0);
  });
});
