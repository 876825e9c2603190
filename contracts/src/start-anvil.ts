/**
 * Spawns a real anvil (from the npm package @foundry-rs/anvil-linux-amd64, or GBT_ANVIL, or anvil
 * on PATH) on a free loopback port and resolves once it says where it listens. For tests and
 * `gbt chain dev`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { GbtError } from "@gbt/protocol";
import type { Hex } from "viem";

/** Anvil's first dev account ("test test … junk" mnemonic): public knowledge, for dev chains only. */
export const ANVIL_DEV_PRIVATE_KEY: Hex =
  "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/** The supervisor's source (run with `node -e`; argv: the anvil binary, then its arguments). */
const SUPERVISOR = `
const { spawn } = require("node:child_process");
const [binary, ...args] = process.argv.slice(1);
const anvil = spawn(binary, args, { stdio: ["ignore", "inherit", "inherit"] });
const stop = () => { if (anvil.exitCode === null && anvil.signalCode === null) anvil.kill("SIGTERM"); };
anvil.on("error", (error) => { process.stderr.write("cannot run anvil: " + (error.code || error.message) + "\\n"); process.exit(127); });
anvil.on("exit", (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
`;

export interface StartAnvilParameters {
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: string;
  chainId?: number;
  /** Seconds between blocks; default: a block per transaction. */
  blockTime?: number;
  /** Keeps the chain's state in this file across restarts. */
  stateFile?: string;
  env?: NodeJS.ProcessEnv;
  /** How long to wait for anvil to listen. */
  startTimeoutMs?: number;
}

export interface RunningAnvil {
  rpcUrl: string;
  port: number;
  chainId: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** The anvil executable: GBT_ANVIL, then the npm package's binary, then `anvil` on PATH. */
export function anvilBinary(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GBT_ANVIL) return env.GBT_ANVIL;
  try {
    const pkg = createRequire(import.meta.url).resolve("@foundry-rs/anvil-linux-amd64/package.json");
    return join(dirname(pkg), "bin", "anvil");
  } catch {
    return "anvil";
  }
}

export async function startAnvil(parameters: StartAnvilParameters = {}): Promise<RunningAnvil> {
  const host = parameters.host ?? "127.0.0.1";
  const chainId = parameters.chainId ?? 31_337;
  const args = ["--host", host, "--port", String(parameters.port ?? 0), "--chain-id", String(chainId)];
  if (parameters.blockTime !== undefined) args.push("--block-time", String(parameters.blockTime));
  if (parameters.stateFile !== undefined) args.push("--state", parameters.stateFile);
  const binary = anvilBinary(parameters.env);
  // anvil runs under a tiny Node supervisor holding a pipe from us: if this process dies, even by
  // SIGKILL, the pipe closes and the supervisor stops anvil, so no chain outlives its owner.
  const child = spawn(process.execPath, ["-e", SUPERVISOR, binary, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
    env: parameters.env ?? process.env,
  });
  let output = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  };
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(
        new GbtError("CHAIN_UNREACHABLE", "anvil did not start listening in time.", {
          details: { output: output.slice(-2000) },
        }),
      );
    }, parameters.startTimeoutMs ?? 15_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8");
      const match = /Listening on [^\s:]+:(\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        child.stdout?.off("data", onData);
        // Keep draining anvil's output so a full pipe never blocks it.
        child.stdout?.resume();
        resolve(Number(match[1]));
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      if (code === 127) {
        reject(
          new GbtError("NOT_FOUND", `Cannot run anvil (${binary}).`, {
            details: { output: output.slice(-2000) },
            hint: "npm ships anvil for Linux x64 (@foundry-rs/anvil-linux-amd64); elsewhere install Foundry or set GBT_ANVIL.",
          }),
        );
        return;
      }
      reject(
        new GbtError("CHAIN_UNREACHABLE", `anvil exited (${code}) before listening.`, {
          details: { output: output.slice(-2000) },
        }),
      );
    });
  });
  return { rpcUrl: `http://${host}:${port}`, port, chainId, child, stop };
}
