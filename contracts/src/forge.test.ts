/**
 * Runs the Solidity suite (unit, fuzz and invariant tests in contracts/test) with the real forge
 * from npm, so `npm test` covers the contracts too. Skips only where npm has no forge binary.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const contractsDir = fileURLToPath(new URL("..", import.meta.url));

function forgeBinary(): string | undefined {
  try {
    const pkg = createRequire(import.meta.url).resolve("@foundry-rs/forge-linux-amd64/package.json");
    const binary = join(dirname(pkg), "bin", "forge");
    return existsSync(binary) ? binary : undefined;
  } catch {
    return undefined;
  }
}

const forge = forgeBinary();

describe.skipIf(forge === undefined)("forge test (contracts/test)", () => {
  it("passes every Solidity unit, fuzz and invariant test", async () => {
    const result = await new Promise<{ code: number; output: string }>((resolve) => {
      execFile(
        forge as string,
        ["test", "--color", "never"],
        { cwd: contractsDir, maxBuffer: 32 * 1024 * 1024, timeout: 240_000 },
        (error, stdout, stderr) => {
          resolve({ code: error ? Number(error.code ?? 1) : 0, output: `${stdout}\n${stderr}` });
        },
      );
    });
    if (result.code !== 0) console.error(result.output.slice(-8000));
    expect(result.code).toBe(0);
    expect(result.output).toMatch(/\d+ tests passed, 0 failed/);
    expect(result.output).toContain("invariant_totalPaidNeverExceedsFunded");
    expect(result.output).toContain("invariant_stakingConservesTokens");
  }, 300_000);

  it("left ABIs and bytecode identical to the committed src/generated/abis.ts", async () => {
    // forge test above built contracts/out; a stale generated file would deploy old bytecode.
    const generated = (await import("./generated/abis.js")) as Record<string, unknown>;
    for (const name of ["GBTToken", "TeamVesting", "NodeStaking", "Settlement", "ModelRegistry"]) {
      const artifact = JSON.parse(
        readFileSync(join(contractsDir, "out", `${name}.sol`, `${name}.json`), "utf8"),
      ) as {
        abi: unknown;
        bytecode: { object: string };
      };
      const id = name.replace(/^GBT/, "gbt").replace(/^[A-Z]/, (c) => c.toLowerCase());
      expect(generated[`${id}Abi`], `${name} ABI: run npm run generate -w @gbt/contracts`).toEqual(
        artifact.abi,
      );
      expect(generated[`${id}Bytecode`], `${name} bytecode: run npm run generate -w @gbt/contracts`).toBe(
        artifact.bytecode.object,
      );
    }
  });
});

if (forge === undefined) {
  describe("forge test (contracts/test)", () => {
    it.skip("skipped: npm ships forge for Linux x64 only (@foundry-rs/forge-linux-amd64 is not installed here)", () => {});
  });
}
