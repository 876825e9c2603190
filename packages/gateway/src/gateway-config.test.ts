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
