import { describe, expect, it } from "vitest";
import { onlyJson, runCli, tempHome } from "../../testing/run-cli.js";

interface AllowlistJson {
  version: number;
  types: { type: string; risk: string; description: string; paramsSchema: Record<string, unknown> }[];
}

describe("gbt agent allowlist (real CLI process, no TTY)", () => {
  it("--json lists the 12 job types with their parameter schemas", async () => {
    const result = await runCli(["agent", "allowlist", "--json"], { GBT_HOME: await tempHome() });
    expect(result.exitCode, result.stderr).toBe(0);
    const body = onlyJson<AllowlistJson>(result.stdout);
    expect(body.version).toBe(1);
    expect(body.types).toHaveLength(12);
    expect(body.types.map((t) => t.type)).toContain("model.pull");
    const pull = body.types.find((t) => t.type === "model.pull");
    expect(pull).toMatchObject({ risk: "change", paramsSchema: { type: "object", required: ["model"] } });
    for (const t of body.types) expect(t.paramsSchema.type).toBe("object");
  });

  it("prints a table with optional parameters marked", async () => {
    const result = await runCli(["agent", "allowlist"], { GBT_HOME: await tempHome() });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^TYPE\s+RISK\s+PARAMS\s+DESCRIPTION/);
    expect(result.stdout).toMatch(/logs\.tail\s+read\s+lines\?/);
  });
});
