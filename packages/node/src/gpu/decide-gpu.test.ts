import { describe, expect, it } from "vitest";
import { decideGpu, type GpuFacts } from "./decide-gpu.js";

/** A Linux x64 machine with node-llama-cpp's CUDA and Vulkan binaries installed and no GPU. */
const linuxNoGpu: GpuFacts = {
  platform: "linux",
  arch: "x64",
  validBackends: ["cuda", "vulkan"],
  usableBackends: [],
  prebuiltBackends: ["cuda", "vulkan"],
  gpuVendors: [],
};

describe("decideGpu", () => {
  it("off always runs on the CPU and says so", () => {
    expect(decideGpu("off", { ...linuxNoGpu, usableBackends: ["cuda"], gpuVendors: ["NVIDIA"] })).toEqual({
      ok: true,
      backend: "cpu",
      reason: "the GPU is turned off (--gpu off)",
    });
  });

  it("auto without a device falls back to the CPU: no GPU was found", () => {
    expect(decideGpu("auto", linuxNoGpu)).toEqual({
      ok: true,
      backend: "cpu",
      reason: "no GPU was found on this machine",
    });
  });

  it("auto with an NVIDIA GPU but no CUDA runtime names the missing driver, not 'no GPU'", () => {
    const decision = decideGpu("auto", { ...linuxNoGpu, gpuVendors: ["NVIDIA Corporation"] });
    expect(decision).toMatchObject({ ok: true, backend: "cpu" });
    expect(decision.reason).toMatch(/CUDA driver or runtime libraries are missing/);
  });

  it("auto picks CUDA when its driver and binary are present, Vulkan when only Vulkan is usable", () => {
    const nvidia = { ...linuxNoGpu, usableBackends: ["cuda", "vulkan"] as const, gpuVendors: ["NVIDIA"] };
    expect(decideGpu("auto", nvidia)).toMatchObject({ ok: true, backend: "cuda" });
    const amd = { ...linuxNoGpu, usableBackends: ["vulkan"] as const, gpuVendors: ["AMD"] };
    expect(decideGpu("auto", amd)).toMatchObject({ ok: true, backend: "vulkan" });
  });

  it("auto on CUDA without its prebuilt binary falls back and says which binary is missing", () => {
    const decision = decideGpu("auto", {
      ...linuxNoGpu,
      usableBackends: ["cuda"],
      prebuiltBackends: [],
      gpuVendors: ["NVIDIA"],
    });
    expect(decision).toMatchObject({ ok: true, backend: "cpu" });
    expect(decision.reason).toMatch(/no prebuilt CUDA binary/);
  });

  it("an explicit backend that cannot run is refused with the reason and a hint, never the CPU", () => {
    const noDevice = decideGpu("cuda", linuxNoGpu);
    expect(noDevice).toMatchObject({
      ok: false,
      backend: "cuda",
      reason: "no NVIDIA GPU was found on this machine",
    });
    expect(decideGpu("cuda", { ...linuxNoGpu, gpuVendors: ["NVIDIA"] })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/CUDA driver or runtime libraries are missing/),
      hint: expect.stringMatching(/nvidia-smi/),
      // Device and binary present: the resolver starts the binary before refusing.
      tryBinary: "cuda",
    });
    expect(decideGpu("metal", linuxNoGpu)).toMatchObject({
      ok: false,
      reason: "Metal is not supported by llama.cpp on linux-x64",
    });
    expect(
      decideGpu("vulkan", { ...linuxNoGpu, prebuiltBackends: ["cuda"], gpuVendors: ["AMD"] }),
    ).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/no prebuilt Vulkan binary/),
    });
  });

  it("an explicit backend that can run is used", () => {
    const mac: GpuFacts = {
      platform: "darwin",
      arch: "arm64",
      validBackends: ["metal", "vulkan"],
      usableBackends: ["metal"],
      prebuiltBackends: ["metal"],
      gpuVendors: ["Apple"],
    };
    expect(decideGpu("metal", mac)).toMatchObject({ ok: true, backend: "metal" });
    expect(decideGpu("auto", mac)).toMatchObject({ ok: true, backend: "metal" });
  });
});
