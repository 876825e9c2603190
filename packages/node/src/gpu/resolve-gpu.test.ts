import { isGbtError } from "@gbt/protocol";
import { describe, expect, it } from "vitest";
import { probeGpuFacts, resolveGpu } from "./resolve-gpu.js";

// This machine has no GPU: these run node-llama-cpp's real detection and getLlama path.
describe("resolveGpu on this machine (real node-llama-cpp, no GPU)", () => {
  it("reads the real facts: the GPU binaries node-llama-cpp installed, no usable GPU backend", async () => {
    const facts = await probeGpuFacts([]);
    expect(facts.platform).toBe(process.platform);
    expect(facts.usableBackends).toEqual([]);
    if (process.platform === "linux" && process.arch === "x64") {
      expect(facts.validBackends).toEqual(["cuda", "vulkan"]);
      expect(facts.prebuiltBackends).toEqual(expect.arrayContaining(["cuda", "vulkan"]));
    }
  });

  it("auto falls back to the CPU with the reason; off runs on the CPU", async () => {
    const auto = await resolveGpu({ choice: "auto", gpus: [] });
    expect(auto).toMatchObject({ requested: "auto", backend: "cpu", devices: [], vramTotalMB: null });
    expect(auto.summary).toBe("CPU inference: no GPU was found on this machine.");
    const off = await resolveGpu({ choice: "off", gpus: [] });
    expect(off.summary).toBe("CPU inference: the GPU is turned off (--gpu off).");
  });

  it("an explicit --gpu cuda fails with GPU_UNAVAILABLE (exit 12) and a hint", async () => {
    const error = await resolveGpu({ choice: "cuda", gpus: [] }).catch((e: unknown) => e);
    expect(isGbtError(error, "GPU_UNAVAILABLE")).toBe(true);
    if (!isGbtError(error)) throw error;
    expect(error.exitCode).toBe(12);
    expect(error.message).toMatch(/^--gpu cuda cannot be used: /);
    expect(error.hint).toBeTruthy();
  });

  it("a decision for a GPU whose binary then does not start is an error when explicit, the CPU on auto", async () => {
    // Facts that claim a usable Vulkan device: the real getLlama({gpu: "vulkan"}) then finds none here.
    const facts = {
      platform: process.platform,
      arch: process.arch,
      validBackends: ["vulkan"] as const,
      usableBackends: ["vulkan"] as const,
      prebuiltBackends: ["vulkan"] as const,
      gpuVendors: ["AMD"],
    };
    const explicit = await resolveGpu({ choice: "vulkan", gpus: [], facts }).catch((e: unknown) => e);
    expect(isGbtError(explicit, "GPU_UNAVAILABLE")).toBe(true);
    const auto = await resolveGpu({ choice: "auto", gpus: [], facts });
    expect(auto.backend).toBe("cpu");
    expect(auto.summary).toMatch(
      /^CPU inference: the Vulkan binary did not start|^CPU inference: Vulkan found no usable device/,
    );
  });

  it("an NVIDIA device whose CUDA runtime was not found: the real CUDA binary is tried, then refused with the reason", async () => {
    const facts = {
      platform: process.platform,
      arch: process.arch,
      validBackends: ["cuda", "vulkan"] as const,
      usableBackends: [] as const,
      prebuiltBackends: ["cuda", "vulkan"] as const,
      gpuVendors: ["NVIDIA"],
    };
    const explicit = await resolveGpu({ choice: "cuda", gpus: [], facts }).catch((e: unknown) => e);
    expect(isGbtError(explicit, "GPU_UNAVAILABLE")).toBe(true);
    expect((explicit as Error).message).toMatch(/CUDA driver or runtime libraries are missing/);
    const auto = await resolveGpu({ choice: "auto", gpus: [], facts });
    expect(auto.summary).toMatch(
      /^CPU inference: a GPU is present but the CUDA driver or runtime libraries are missing\.$/,
    );
  });
});
