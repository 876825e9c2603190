import { ALLOWLIST_VERSION, GbtError } from "@gbt/protocol";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { createAllowlist, jobTypes } from "./index.js";

const a = privateKeyToAccount(`0x${"11".repeat(32)}`).address;
const b = privateKeyToAccount(`0x${"22".repeat(32)}`).address;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    return error instanceof GbtError ? error.code : "not a GbtError";
  }
}

describe("createAllowlist", () => {
  const allowlist = createAllowlist();

  it("lists exactly the job types of this version", () => {
    expect(allowlist.version).toBe(ALLOWLIST_VERSION);
    expect(allowlist.types()).toEqual([
      "status.read",
      "model.pull",
      "model.remove",
      "model.switch",
      "service.restart",
      "node.drain",
      "node.resume",
      "benchmark.run",
      "config.set",
      "logs.tail",
      "owner.add",
      "owner.remove",
    ]);
    expect(allowlist.get("shell.exec")).toBeUndefined();
    expect(codeOf(() => allowlist.parseParams("shell.exec", {}))).toBe("UNKNOWN_JOB_TYPE");
  });

  it("gives every type a JSON Schema that forbids unknown keys", () => {
    for (const entry of allowlist.entries()) {
      const schema = entry.jsonSchema();
      expect(schema.type, entry.type).toBe("object");
      expect(schema.additionalProperties, entry.type).toBe(false);
    }
    expect(allowlist.get("benchmark.run")?.jsonSchema().properties).toMatchObject({
      genTokens: { type: "integer", minimum: 1, maximum: 1024 },
    });
  });

  it.each([
    ["status.read", {}],
    ["model.pull", { model: "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M" }],
    ["model.switch", { model: "llama3.1:8b" }],
    ["service.restart", { service: "backend" }],
    ["node.drain", {}],
    ["node.drain", { reason: "kernel upgrade" }],
    ["benchmark.run", { mode: "serve", genTokens: 1024, promptTokens: 8192 }],
    ["config.set", { key: "backend.threads", value: 16 }],
    ["config.set", { key: "node.mode", value: "managed" }],
    ["config.set", { key: "backend.contextSize", value: 1_048_576 }],
    ["logs.tail", { lines: 500 }],
    ["owner.add", { address: b }],
  ])("accepts %s %j", (type, params) => {
    expect(codeOf(() => allowlist.parseParams(type, params))).toBeUndefined();
  });

  it.each([
    ["status.read", { verbose: true }],
    ["service.restart", { service: "sshd" }],
    ["node.drain", { reason: "x\u001b[2J" }],
    ["benchmark.run", { genTokens: 1025 }],
    ["benchmark.run", { promptTokens: 0 }],
    ["config.set", { key: "backend.threads", value: 0 }],
    ["config.set", { key: "backend.threads", value: 1.5 }],
    ["config.set", { key: "node.mode", value: "root" }],
    ["config.set", { key: "backend.capacity", value: "8" }],
    ["config.set", { key: "server.port", value: 65_536 }],
    ["logs.tail", { lines: 501 }],
    ["owner.add", { address: "0x1234" }],
    ["model.remove", { model: "-rf" }],
    ["model.remove", { model: "a|b" }],
  ])("rejects %s %j with INVALID_PARAMS", (type, params) => {
    expect(codeOf(() => allowlist.parseParams(type, params))).toBe("INVALID_PARAMS");
  });

  it("owner.remove never removes the last owner, nor a non-owner", () => {
    const policy = allowlist.get("owner.remove")?.policy;
    expect(policy).toBeDefined();
    expect(codeOf(() => policy?.({ address: a }, { owners: [a], now: 0 }))).toBe("POLICY_DENIED");
    expect(codeOf(() => policy?.({ address: b }, { owners: [a], now: 0 }))).toBe("POLICY_DENIED");
    expect(codeOf(() => policy?.({ address: b }, { owners: [a, b], now: 0 }))).toBeUndefined();
  });

  it("takes other entries (executors attached) and refuses duplicates", () => {
    const execute = () => "done";
    const custom = createAllowlist({
      entries: [{ ...jobTypes[0], execute }],
      version: 7,
    });
    expect(custom.version).toBe(7);
    expect(custom.get("status.read")?.execute).toBe(execute);
    expect(() =>
      createAllowlist({
        entries: [
          jobTypes[0],
          { type: "status.read", risk: "read", params: z.strictObject({}), description: "" },
        ],
      }),
    ).toThrow(/declared twice/);
  });
});
