import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadGatewayConfig, parseGatewayConfig } from "./gateway-config.js";

describe("loadGatewayConfig", () => {
  it("uses the defaults without a file, and reads a valid one", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gbt-gwconfig-"));
    expect(await loadGatewayConfig(join(dir, "absent.json"))).toEqual(parseGatewayConfig({}, "defaults"));
    const path = join(dir, "gateway.json");
    await writeFile(path, JSON.stringify({ port: 9191 }));
    expect((await loadGatewayConfig(path)).port).toBe(9191);
  });

  it("refuses a file that is not JSON, and one with a bad field, naming the file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gbt-gwconfig-"));
    const broken = join(dir, "broken.json");
    await writeFile(broken, "{ port: 9191");
    await expect(loadGatewayConfig(broken)).rejects.toMatchObject({
      code: "CONFIG_INVALID",
      message: expect.stringContaining(broken),
    });
    const bad = join(dir, "bad.json");
    await writeFile(bad, JSON.stringify({ port: "eighty" }));
    await expect(loadGatewayConfig(bad)).rejects.toMatchObject({ code: "CONFIG_INVALID" });
  });
});

describe("routing.minStakeGbt", () => {
  const chain = {
    rpcUrl: "http://127.0.0.1:8545",
    chainId: 31_337,
    contract: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    staking: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
  };

  it("refuses a minimum with no NodeStaking contract to read it from", () => {
    for (const settlement of [undefined, { ...chain, staking: undefined }]) {
      expect(() => parseGatewayConfig({ routing: { minStakeGbt: 100 }, settlement }, "gateway.json")).toThrow(
        expect.objectContaining({
          code: "CONFIG_INVALID",
          message: expect.stringContaining("routing.minStakeGbt is 100"),
          hint: expect.stringContaining("settlement.staking"),
        }),
      );
    }
  });

  it("refuses an amount that is not GBT, naming the field", () => {
    for (const minStakeGbt of [-1, "12,5", "1e3", "0x10", "1.0000000000000000001", ""]) {
      expect(() => parseGatewayConfig({ routing: { minStakeGbt }, settlement: chain })).toThrow(
        expect.objectContaining({
          code: "CONFIG_INVALID",
          message: expect.stringContaining("routing.minStakeGbt"),
        }),
      );
    }
  });

  it("defaults to 0 (no check, no chain needed) and takes a number or a decimal string", () => {
    expect(parseGatewayConfig({}).routing.minStakeGbt).toBe(0);
    expect(parseGatewayConfig({ routing: { minStakeGbt: 0 } }).settlement).toBeUndefined();
    expect(parseGatewayConfig({ routing: { minStakeGbt: 100 }, settlement: chain }).routing.minStakeGbt).toBe(
      100,
    );
    const config = parseGatewayConfig({ routing: { minStakeGbt: "12.5" }, settlement: chain });
    expect(config.routing.minStakeGbt).toBe("12.5");
    expect(config.settlement?.staking).toBe(chain.staking);
  });
});
