import { execFile } from "node:child_process";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { verifyObject } from "@gbt/protocol";
import { spawn } from "@lydell/node-pty";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gbtBin, onlyJson, runCli, tempHome } from "../../testing/run-cli.js";
import { type ServeProcess, startServeProcess } from "../../testing/serve-process.js";

interface Created {
  address: string;
  path: string;
  encrypted: boolean;
}

interface Outcome {
  state: string;
  code?: string;
  result?: unknown;
}

const NODE = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

describe("gbt owner create / show (real CLI process, no TTY)", () => {
  it("writes ./owner.key (0600, unencrypted, said so), shows the same address, and never overwrites without --force", async () => {
    const dir = await tempHome("gbt-owner-");
    const run = (args: string[]) => runCli(["owner", ...args], { GBT_HOME: dir });
    const out = join(dir, "owner.key");
    const created = await run(["create", "--out", out]);
    expect(created.exitCode, created.stderr).toBe(0);
    const address = created.stdout.trim();
    expect(address).toMatch(ADDRESS);
    expect(created.stderr).toContain("UNENCRYPTED");
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    const keystore = JSON.parse(await readFile(out, "utf8")) as Record<string, unknown>;
    expect(keystore).toMatchObject({ format: "gbt-keystore", encrypted: false, address });

    const shown = await run(["show", out]);
    expect(shown.exitCode, shown.stderr).toBe(0);
    expect(shown.stdout.trim()).toBe(address);
    const shownJson = await run(["show", out, "--json"]);
    expect(onlyJson<Created>(shownJson.stdout)).toEqual({ address, path: out, encrypted: false });

    const again = await run(["create", "--out", out, "--json"]);
    expect(again.exitCode).toBe(9);
    expect(onlyJson<{ error: { code: string; hint: string } }>(again.stdout).error).toMatchObject({
      code: "ALREADY_EXISTS",
      hint: expect.stringContaining("--force"),
    });
    expect((await run(["show", out])).stdout.trim()).toBe(address);

    const replaced = await run(["create", "--out", out, "--force", "--json"]);
    expect(replaced.exitCode, replaced.stderr).toBe(0);
    const next = onlyJson<Created>(replaced.stdout);
    expect(next.address).not.toBe(address);
    expect((await run(["show", out])).stdout.trim()).toBe(next.address);
    // Nothing but the key file is left behind (no temp files).
    expect(await readdir(dir)).toEqual(["owner.key"]);
  });

  it("defaults --out to owner.key in the working directory", async () => {
    const dir = await tempHome("gbt-owner-cwd-");
    // runCli runs gbt in this process's directory; this one runs it in `dir`, without a TTY.
    const result = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile(
        process.execPath,
        [gbtBin, "owner", "create", "--json"],
        { cwd: dir, env: { ...process.env, CI: "true", GBT_PASSPHRASE: "" } },
        (error, stdout) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout }),
      );
    });
    expect(result.code, result.stdout).toBe(0);
    expect(onlyJson<Created>(result.stdout).path).toBe(join(dir, "owner.key"));
    expect((await stat(join(dir, "owner.key"))).mode & 0o777).toBe(0o600);
  });

  it("encrypts with --passphrase-file or GBT_PASSPHRASE; show needs no passphrase, a wrong one is refused with exit 4", async () => {
    const dir = await tempHome("gbt-owner-enc-");
    const passFile = join(dir, "pass.txt");
    const wrongFile = join(dir, "wrong.txt");
    await writeFile(passFile, "correct horse battery\n", { mode: 0o600 });
    await writeFile(wrongFile, "incorrect horse\n", { mode: 0o600 });
    const out = join(dir, "keys", "owner.key");
    const created = await runCli(["owner", "create", "--out", out, "--passphrase-file", passFile, "--json"]);
    expect(created.exitCode, created.stderr).toBe(0);
    const { address, encrypted } = onlyJson<Created>(created.stdout);
    expect(encrypted).toBe(true);
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    const text = await readFile(out, "utf8");
    expect(text).not.toContain("privateKey");

    const fromEnv = await runCli(["owner", "create", "--out", join(dir, "env.key"), "--json"], {
      GBT_PASSPHRASE: "from the environment",
    });
    expect(onlyJson<Created>(fromEnv.stdout).encrypted).toBe(true);

    const shown = await runCli(["owner", "show", out]);
    expect(shown.exitCode, shown.stderr).toBe(0);
    expect(shown.stdout.trim()).toBe(address);
    const checked = await runCli(["owner", "show", out, "--passphrase-file", passFile, "--json"]);
    expect(onlyJson<Created>(checked.stdout)).toEqual({ address, path: out, encrypted: true });

    const wrong = await runCli(["owner", "show", out, "--passphrase-file", wrongFile]);
    expect(wrong.exitCode).toBe(4);
    expect(wrong.stdout).toBe("");
    expect(wrong.stderr).toContain("The passphrase does not unlock this keystore.");
    expect(wrong.stderr).not.toContain("incorrect horse");

    // Signing with it: a wrong or missing passphrase fails before anything is signed.
    const job = (extra: string[]) =>
      runCli(["job", "create", "status.read", "--node", NODE, "--key-file", out, "--json", ...extra], {
        GBT_HOME: dir,
      });
    const wrongJob = await job(["--passphrase-file", wrongFile]);
    expect(wrongJob.exitCode).toBe(4);
    expect(onlyJson<{ error: { code: string } }>(wrongJob.stdout).error.code).toBe("WRONG_PASSPHRASE");
    const noPassphrase = await job([]);
    expect(noPassphrase.exitCode).toBe(4);
    expect(onlyJson<{ error: { code: string } }>(noPassphrase.stdout).error.code).toBe("PASSPHRASE_REQUIRED");
    const signed = await job(["--passphrase-file", passFile]);
    expect(signed.exitCode, signed.stderr).toBe(0);
    const verified = await verifyObject(onlyJson(signed.stdout), {
      kind: "Job",
      chainId: 31337,
      allowedSigners: [address as `0x${string}`],
      audience: NODE,
    });
    expect(verified.message.issuer).toBe(address);
  });

  it("show: a hex key file gives its address; a missing or malformed file is a clear error", async () => {
    const dir = await tempHome("gbt-owner-show-");
    const hexFile = join(dir, "hex.key");
    // Anvil's second well-known key: a test key only.
    await writeFile(hexFile, "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d\n", {
      mode: 0o600,
    });
    const hex = await runCli(["owner", "show", hexFile, "--json"]);
    expect(onlyJson<Created>(hex.stdout)).toEqual({
      address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
      path: hexFile,
      encrypted: false,
    });
    expect(hex.stdout).not.toContain("59c6995e");

    const missing = await runCli(["owner", "show", join(dir, "nope.key")]);
    expect(missing.exitCode).toBe(6);
    expect(missing.stderr).toContain("nope.key");

    await writeFile(join(dir, "bad.key"), '{"format":"gbt-keystore","version":1}\n');
    const malformed = await runCli(["owner", "show", join(dir, "bad.key"), "--json"]);
    expect(malformed.exitCode).toBe(3);
    expect(onlyJson<{ error: { code: string } }>(malformed.stdout).error.code).toBe("KEYSTORE_INVALID");
  });
});

describe("gbt owner create on a TTY", () => {
  function runOnPty(args: string[], cwd: string, answers: string[]) {
    const env: NodeJS.ProcessEnv = { ...process.env, TERM: "xterm-256color", GBT_PASSPHRASE: "" };
    delete env.CI;
    const pty = spawn(process.execPath, [gbtBin, ...args], {
      cwd,
      env: env as Record<string, string>,
      cols: 200,
      rows: 24,
    });
    let text = "";
    let prompts = 0;
    pty.onData((data) => {
      text += data;
      // Each prompt ends with ": "; answer the next one once it shows.
      const seen = (
        text.match(/(Passphrase to encrypt the owner key|The same passphrase again)[^:]*: /g) ?? []
      ).length;
      while (prompts < seen && prompts < answers.length) pty.write(`${answers[prompts++]}\r`);
    });
    return new Promise<{ code: number; text: string }>((resolve) =>
      pty.onExit(({ exitCode }) => resolve({ code: exitCode, text })),
    );
  }

  it("asks for the passphrase twice, hidden; different answers write nothing; empty means unencrypted", async () => {
    const dir = await tempHome("gbt-owner-tty-");
    const ok = await runOnPty(["owner", "create", "--out", "a.key"], dir, ["tty secret 1", "tty secret 1"]);
    expect(ok.code, ok.text).toBe(0);
    expect(ok.text).not.toContain("tty secret 1");
    expect(ok.text).toContain("encrypted, mode 0600");
    const a = JSON.parse(await readFile(join(dir, "a.key"), "utf8")) as { encrypted: boolean };
    expect(a.encrypted).toBe(true);

    const differ = await runOnPty(["owner", "create", "--out", "b.key"], dir, ["one", "two"]);
    expect(differ.code).toBe(6);
    expect(differ.text).toContain("The two passphrases differ");
    const plain = await runOnPty(["owner", "create", "--out", "c.key"], dir, [""]);
    expect(plain.code, plain.text).toBe(0);
    expect(plain.text).toContain("UNENCRYPTED");
    expect((await readdir(dir)).sort()).toEqual(["a.key", "c.key"]);
  });
});

describe("an owner key from `gbt owner create` drives a real node set up with --owner (real processes, loopback)", () => {
  let home: string;
  let node: ServeProcess;
  let keyFile: string;
  let passFile: string;
  let strangerFile: string;
  const env = () => ({ GBT_HOME: home });

  beforeAll(async () => {
    home = await tempHome("gbt-owner-node-");
    keyFile = join(home, "owner.key");
    passFile = join(home, "pass.txt");
    strangerFile = join(home, "stranger.key");
    await writeFile(passFile, "owner passphrase\n", { mode: 0o600 });
    const created = await runCli(["owner", "create", "--out", keyFile, "--passphrase-file", passFile], env());
    expect(created.exitCode, created.stderr).toBe(0);
    expect((await runCli(["owner", "create", "--out", strangerFile], env())).exitCode).toBe(0);
    // As the README shows: the address from `gbt owner show` goes to `gbt setup --owner`.
    const owner = (await runCli(["owner", "show", keyFile], env())).stdout.trim();
    expect(owner).toBe(created.stdout.trim());
    const setup = await runCli(["setup", "--yes", "--owner", owner], env());
    expect(setup.exitCode, setup.stderr).toBe(0);
    node = await startServeProcess(["--capacity", "1", "--threads", "1"], env());
  }, 120_000);

  afterAll(async () => {
    await node?.stop("SIGKILL");
  });

  it("gbt job create --key-file (encrypted) | gbt job submit runs; a key the node does not know is refused", async () => {
    const submit = async (keyArgs: string[]) => {
      const created = await runCli(["job", "create", "status.read", ...keyArgs], env());
      expect(created.exitCode, created.stderr).toBe(0);
      const submitted = await runCli(
        ["job", "submit", "-", "--node-url", node.url, "--json"],
        env(),
        60_000,
        created.stdout,
      );
      return { exitCode: submitted.exitCode, outcome: onlyJson<Outcome>(submitted.stdout) };
    };
    const owned = await submit(["--key-file", keyFile, "--passphrase-file", passFile]);
    expect(owned.exitCode).toBe(0);
    expect(owned.outcome.state).toBe("succeeded");
    const stranger = await submit(["--key-file", strangerFile]);
    expect(stranger.exitCode).toBe(4);
    expect(stranger.outcome).toMatchObject({ state: "rejected", code: "UNKNOWN_SIGNER" });
  }, 120_000);

  it("gbt operator --key-file (headless, approved) signs a job the node runs", async () => {
    const result = await runCli(
      [
        "operator",
        "--node-url",
        node.url,
        "--json",
        "--prompt",
        "status",
        "--approve",
        "--key-file",
        keyFile,
        "--passphrase-file",
        passFile,
      ],
      env(),
      120_000,
    );
    expect(result.exitCode, result.stderr).toBe(0);
    const events = result.stdout
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => JSON.parse(line) as { type: string; [key: string]: unknown });
    expect(events.find((e) => e.type === "result")).toMatchObject({
      jobType: "status.read",
      state: "succeeded",
    });
    expect(events.at(-1)).toMatchObject({ type: "done", approved: true, succeeded: 1, exitCode: 0 });
    expect(result.stdout).not.toContain("owner passphrase");
  }, 120_000);
});
