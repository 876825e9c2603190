/**
 * The GPU resolver: gathers the real facts (node-llama-cpp's GPU types, which prebuilt binaries
 * are installed, the hardware probe's GPUs), decides with {@link decideGpu}, and, for a GPU,
 * starts that llama.cpp backend to read its device names and VRAM. The result is what the
 * embedded backend will use, or why it runs on the CPU, in one sentence.
 */
import { createRequire } from "node:module";
import { GbtError } from "@gbt/protocol";
import { z } from "zod";
import { sharedLlama } from "../backends/embedded.js";
import { type GpuChoice, gpuChoices } from "../config.js";
import type { GpuInfo } from "../hardware.js";
import { decideGpu, type GpuBackend, type GpuFacts } from "./decide-gpu.js";

/** What `gbt setup` / `gbt status` print about the GPU (plain JSON). */
export const gpuStatusSchema = z.strictObject({
  requested: z.enum(gpuChoices),
  backend: z.enum(["cuda", "vulkan", "metal", "cpu"]),
  devices: z.array(z.string().max(256)).max(64),
  vramTotalMB: z.number().int().min(0).nullable(),
  vramFreeMB: z.number().int().min(0).nullable(),
  driver: z.string().max(256).nullable(),
  /** One sentence: the GPU and VRAM used, or why inference runs on the CPU. */
  summary: z.string().max(512),
});
export type GpuStatus = z.infer<typeof gpuStatusSchema>;

const gpuBackends: readonly GpuBackend[] = ["cuda", "vulkan", "metal"];
const label: Record<GpuBackend, string> = { cuda: "CUDA", vulkan: "Vulkan", metal: "Metal" };

function isGpuBackend(value: unknown): value is GpuBackend {
  return gpuBackends.includes(value as GpuBackend);
}

/** node-llama-cpp's name for this platform (its prebuilt binary packages are `@node-llama-cpp/<platform>-<arch>[-gpu]`). */
function binaryPlatform(platform: string): string {
  return platform === "darwin" ? "mac" : platform === "win32" ? "win" : platform;
}

/** Whether node-llama-cpp's prebuilt binary package for `backend` is installed. */
function hasPrebuilt(backend: GpuBackend, platform: string, arch: string): boolean {
  const require = createRequire(import.meta.url);
  // Metal ships inside the plain macOS arm64 package.
  const names =
    backend === "metal"
      ? [
          `@node-llama-cpp/${binaryPlatform(platform)}-${arch}-metal`,
          `@node-llama-cpp/${binaryPlatform(platform)}-${arch}`,
        ]
      : backend === "cuda"
        ? [
            `@node-llama-cpp/${binaryPlatform(platform)}-${arch}-cuda`,
            `@node-llama-cpp/${binaryPlatform(platform)}-${arch}-cuda-ext`,
          ]
        : [`@node-llama-cpp/${binaryPlatform(platform)}-${arch}-${backend}`];
  // Resolved from node-llama-cpp itself, whose optional dependencies they are.
  let from: string;
  try {
    from = require.resolve("node-llama-cpp");
  } catch {
    return false;
  }
  const fromLlama = createRequire(from);
  return names.some((name) => {
    try {
      // The packages export only their entry point (not package.json).
      fromLlama.resolve(name);
      return true;
    } catch {
      return false;
    }
  });
}

/** The facts of this machine for {@link decideGpu}. */
export async function probeGpuFacts(gpus: readonly GpuInfo[] | null): Promise<GpuFacts> {
  const { getLlamaGpuTypes } = await import("node-llama-cpp");
  const [valid, usable] = await Promise.all([getLlamaGpuTypes("allValid"), getLlamaGpuTypes("supported")]);
  const { platform, arch } = process;
  return {
    platform,
    arch,
    validBackends: valid.filter(isGpuBackend),
    usableBackends: usable.filter(isGpuBackend),
    prebuiltBackends: gpuBackends.filter((backend) => hasPrebuilt(backend, platform, arch)),
    gpuVendors: (gpus ?? []).map((gpu) => gpu.vendor),
  };
}

function mib(bytes: number): number {
  return Math.round(bytes / 1024 / 1024);
}

function gib(mb: number): string {
  return `${(mb / 1024).toFixed(mb < 10 * 1024 ? 1 : 0)} GiB`;
}

export interface ResolveGpuParameters {
  choice: GpuChoice;
  /** The hardware probe's GPUs (for the decision's device facts and the driver version). */
  gpus: readonly GpuInfo[] | null;
  /** Facts, injectable for tests; default {@link probeGpuFacts}. */
  facts?: GpuFacts;
}

/**
 * Resolves a GPU choice to what the embedded backend will use. Throws GPU_UNAVAILABLE when an
 * explicit `cuda`/`vulkan`/`metal` cannot run here; `auto` never throws for lack of a GPU.
 */
export async function resolveGpu(parameters: ResolveGpuParameters): Promise<GpuStatus> {
  const { choice, gpus } = parameters;
  const facts = parameters.facts ?? (await probeGpuFacts(gpus));
  const decision = decideGpu(choice, facts);
  const cpu = (reason: string): GpuStatus => ({
    requested: choice,
    backend: "cpu",
    devices: [],
    vramTotalMB: null,
    vramFreeMB: null,
    driver: null,
    summary: `CPU inference: ${reason}.`,
  });
  let backend: GpuBackend;
  if (decision.tryBinary !== undefined && (!decision.ok || decision.backend === "cpu")) {
    // The device and binary are here but the runtime scan found nothing: start the binary to be sure.
    const started = await sharedLlama(decision.tryBinary).then(
      (llama) => llama.gpu !== false,
      () => false,
    );
    if (!started) {
      if (!decision.ok) throw gpuUnavailable(decision.backend, decision.reason, decision.hint);
      return cpu(decision.reason);
    }
    backend = decision.tryBinary;
  } else {
    if (!decision.ok) throw gpuUnavailable(decision.backend, decision.reason, decision.hint);
    if (decision.backend === "cpu") return cpu(decision.reason);
    backend = decision.backend;
  }
  let llama: Awaited<ReturnType<typeof sharedLlama>>;
  try {
    llama = await sharedLlama(backend);
  } catch (error) {
    const reason = `the ${label[backend]} binary did not start (${error instanceof Error ? error.message : String(error)})`;
    if (choice === "auto") return cpu(reason);
    throw gpuUnavailable(backend, reason, "Check the GPU driver (`nvidia-smi`), or use --gpu off.");
  }
  const [vram, devices] = await Promise.all([llama.getVramState(), llama.getGpuDeviceNames()]);
  if (llama.gpu === false || devices.length === 0 || vram.total === 0) {
    const reason = `${label[backend]} found no usable device`;
    if (choice === "auto") return cpu(reason);
    throw gpuUnavailable(backend, reason, "Check the GPU driver (`nvidia-smi`), or use --gpu off.");
  }
  const driver = (gpus ?? []).find((gpu) => gpu.driver)?.driver ?? null;
  const total = mib(vram.total);
  const free = mib(vram.free);
  return {
    requested: choice,
    backend,
    devices,
    vramTotalMB: total,
    vramFreeMB: free,
    driver,
    summary: `${label[backend]} on ${devices.join(", ")} (${gib(total)} VRAM, ${gib(free)} free${driver ? `, driver ${driver}` : ""}).`,
  };
}

function gpuUnavailable(backend: GpuBackend, reason: string, hint: string): GbtError {
  return new GbtError("GPU_UNAVAILABLE", `--gpu ${backend} cannot be used: ${reason}.`, {
    details: { gpu: backend, reason },
    hint,
  });
}
