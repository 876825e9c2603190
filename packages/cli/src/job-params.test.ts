import { createAllowlist } from "@gbt/agent";
import { verifyObject } from "@gbt/protocol";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { buildJobParams, createSignedJob, summarizeParams } from "./job-params.js";

const account = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const NODE = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
const allowlist = createAllowlist();
const schemaOf = (type: string) => allowlist.get(type)?.jsonSchema() ?? {};

describe("buildJobParams", () => {
  it("types values by the schema, else JSON, else text; later assignments win", () => {
    expect(buildJobParams({ schema: schemaOf("logs.tail"), assignments: ["lines=20"] })).toEqual({
      lines: 20,
    });
    expect(buildJobParams({ schema: schemaOf("model.pull"), assignments: ["model=42"] })).toEqual({
      model: "42",
    });
    expect(
      buildJobParams({
        schema: schemaOf("config.set"),
        paramsJson: '{"key":"server.port","value":1}',
        assignments: ["value=8080"],
      }),
    ).toEqual({ key: "server.port", value: 8080 });
  });

  it("rejects malformed input", () => {
    expect(() => buildJobParams({ schema: {}, assignments: ["nokey"] })).toThrow(/key=value/);
    expect(() => buildJobParams({ schema: {}, paramsJson: "[1]" })).toThrow(/JSON object/);
  });
});

describe("summarizeParams", () => {
  it("names the parameters, `?` for optional ones", () => {
    expect(summarizeParams(schemaOf("benchmark.run"))).toBe("mode?, genTokens?, promptTokens?");
    expect(summarizeParams(schemaOf("status.read"))).toBe("-");
  });
});

describe("createSignedJob", () => {
  it("signs a Job valid for the ttl, with the given nonce", async () => {
    const job = await createSignedJob({
      allowlist,
      account,
      type: "model.pull",
      params: { model: "llama3.2:1b" },
      node: NODE,
      chainId: 31337,
      ttlSeconds: 60,
      nonce: 7,
      now: () => 1_700_000_000_000,
    });
    expect(job.message).toMatchObject({ nonce: 7, notBefore: 1_700_000_000, expiresAt: 1_700_000_060 });
    await verifyObject(job, {
      kind: "Job",
      chainId: 31337,
      allowedSigners: [account.address],
      audience: NODE,
      now: () => 1_700_000_010_000,
    });
  });

  it("refuses unknown types and invalid parameters before signing", async () => {
    const base = { allowlist, account, node: NODE, chainId: 31337 } as const;
    await expect(createSignedJob({ ...base, type: "shell.exec", params: {} })).rejects.toMatchObject({
      code: "UNKNOWN_JOB_TYPE",
    });
    await expect(
      createSignedJob({ ...base, type: "model.pull", params: { model: "a;b" } }),
    ).rejects.toMatchObject({
      code: "INVALID_PARAMS",
    });
  });
});
