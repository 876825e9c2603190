import { describe, expect, it } from "vitest";
import { gpuOptions, parseGpuLayers } from "./gpu-flags.js";

describe("--gpu / --gpu-layers → options", () => {
  it("maps the flags onto the service options, leaving out what was not given", () => {
    expect(gpuOptions({})).toEqual({});
    expect(gpuOptions({ gpu: "cuda", "gpu-layers": "max" })).toEqual({ gpu: "cuda", gpuLayers: "max" });
    expect(gpuOptions({ "gpu-layers": "20" })).toEqual({ gpuLayers: 20 });
  });

  it("refuses a --gpu-layers that is neither a count nor auto/max, as a usage error", () => {
    expect(parseGpuLayers("auto")).toBe("auto");
    expect(() => parseGpuLayers("-1")).toThrow(/--gpu-layers expects/);
    expect(() => parseGpuLayers("all")).toThrow(/--gpu-layers expects/);
  });
});
