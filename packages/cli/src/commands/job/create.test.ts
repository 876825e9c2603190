import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { verifyObject } from "@gbt/protocol";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { onlyJson, runCli, tempHome } from "../../testing/run-cli.js";

// Anvil's second and third well-known keys: test keys only.
const OWNER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const OWNER = privateKeyToAccount(OWNER_KEY).address;
const NODE = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

async function keyFile(home: string): Promise<string> {
  const path = join(home, "owner.key");
  await writeFile(path, `${OWNER_KEY}\n`, { mode: 0o600 });
  return path;
}

describe("gbt job create (real CLI process, no TTY)", () => {
  it("signs a status.read Job that verifyObject accepts for the node", async () => {
    const home = await tempHome("gbt-job-cli-");
    const result = await runCli(
      ["job", "create", "status.read", "--node", NODE, "--key-file", await keyFile(home)],
      {
        GBT_HOME: home,
      },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).not.toContain(OWNER_KEY.slice(2));
    const job = await verifyObject(onlyJson(result.stdout), {
      kind: "Job",
      chainId: 31337,
      allowedSigners: [OWNER],
      audience: NODE,
    });
    expect(job.message).toMatchObject({
      type: "status.read",
      issuer: OWNER,
      node: NODE,
      allowlistVersion: 1,
    });
    expect(job.message.expiresAt - job.message.notBefore).toBe(300);
  });

  it("types --param values by the schema and takes the key from GBT_OWNER_KEY", async () => {
    const result = await runCli(
      ["job", "create", "logs.tail", "--param", "lines=20", "--node", NODE, "--chain-id", "8453", "--json"],
      { GBT_HOME: await tempHome("gbt-job-cli-"), GBT_OWNER_KEY: OWNER_KEY },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    const job = await verifyObject(onlyJson(result.stdout), {
      kind: "Job",
      chainId: 8453,
      allowedSigners: [OWNER],
    });
    expect(job.payload).toEqual({ lines: 20 });
  });

  it("a bad parameter exits 6 with INVALID_PARAMS and prints no job", async () => {
    const home = await tempHome("gbt-job-cli-");
    const result = await runCli(
      [
        "job",
        "create",
        "model.pull",
        "--param",
        "model=a;rm -rf /",
        "--node",
        NODE,
        "--key-file",
        await keyFile(home),
      ],
      { GBT_HOME: home },
    );
    expect(result.exitCode).toBe(6);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("$.model");

    const json = await runCli(
      ["job", "create", "model.pull", "--param", "model=a;rm -rf /", "--node", NODE, "--json"],
      { GBT_HOME: home, GBT_OWNER_KEY: OWNER_KEY },
    );
    expect(json.exitCode).toBe(6);
    expect(onlyJson<{ error: { code: string } }>(json.stdout).error.code).toBe("INVALID_PARAMS");
  });

  it("an unknown type exits 6 listing the valid types", async () => {
    const result = await runCli(["job", "create", "shell.exec", "--node", NODE, "--json"], {
      GBT_HOME: await tempHome("gbt-job-cli-"),
      GBT_OWNER_KEY: OWNER_KEY,
    });
    expect(result.exitCode).toBe(6);
    const body = onlyJson<{ error: { code: string; hint: string } }>(result.stdout);
    expect(body.error.code).toBe("UNKNOWN_JOB_TYPE");
    expect(body.error.hint).toContain("status.read");
  });

  it("without a key exits 2 naming --key-file and GBT_OWNER_KEY", async () => {
    const result = await runCli(["job", "create", "status.read", "--node", NODE], {
      GBT_HOME: await tempHome("gbt-job-cli-"),
      GBT_OWNER_KEY: "",
    });
    expect(result.exitCode).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("--key-file");
    expect(result.stderr).toContain("GBT_OWNER_KEY");
  });
});
