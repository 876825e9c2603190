/**
 * The GPU decision, as a pure function of facts about this machine: which llama.cpp backend
 * (CUDA, Vulkan, Metal or the CPU) the embedded backend will use for a `--gpu` choice, and why,
 * in one sentence. `auto` falls back to the CPU and says why; an explicit GPU backend that cannot
 * run here is refused (GPU_UNAVAILABLE), never silently replaced by the CPU.
 */
import type { GpuChoice } from "../config.js";

export type GpuBackend = "cuda" | "vulkan" | "metal";

/** What this machine offers, as node-llama-cpp and the hardware probe see it. */
export interface GpuFacts {
  /** `process.platform`-style name, e.g. "linux", "darwin", "win32". */
  platform: string;
  arch: string;
  /** GPU backends llama.cpp supports on this OS and architecture (`getLlamaGpuTypes("allValid")`). */
  validBackends: readonly GpuBackend[];
  /** GPU backends whose drivers and runtime libraries are installed (`getLlamaGpuTypes("supported")`). */
  usableBackends: readonly GpuBackend[];
  /** GPU backends whose prebuilt node-llama-cpp binary is installed. */
  prebuiltBackends: readonly GpuBackend[];
  /** GPU vendors the hardware probe found (e.g. "NVIDIA"); empty when it found none. */
  gpuVendors: readonly string[];
}

/**
 * `tryBinary`: a GPU backend whose device and prebuilt binary are present though node-llama-cpp's
 * library scan did not find its runtime (a statically linked CUDA build needs none): worth starting
 * the binary before giving up on it.
 */
export type GpuDecision =
  | { ok: true; backend: GpuBackend | "cpu"; reason: string; tryBinary?: GpuBackend }
  | { ok: false; backend: GpuBackend; reason: string; hint: string; tryBinary?: GpuBackend };

const label: Record<GpuBackend, string> = { cuda: "CUDA", vulkan: "Vulkan", metal: "Metal" };

/** The vendors whose devices a backend drives (Vulkan and Metal: any GPU). */
function hasDeviceFor(backend: GpuBackend, vendors: readonly string[]): boolean {
  if (backend === "cuda") return vendors.some((vendor) => /nvidia/i.test(vendor));
  return vendors.length > 0;
}

/** Why `backend` cannot run here, or undefined when it can. */
function blocker(
  backend: GpuBackend,
  facts: GpuFacts,
): { reason: string; hint: string; tryBinary?: GpuBackend } | undefined {
  const name = label[backend];
  if (!facts.validBackends.includes(backend)) {
    return {
      reason: `${name} is not supported by llama.cpp on ${facts.platform}-${facts.arch}`,
      hint: `Use --gpu auto, or one of: ${[...facts.validBackends, "off"].join(", ")}.`,
    };
  }
  if (!facts.prebuiltBackends.includes(backend)) {
    return {
      reason: `no prebuilt ${name} binary of node-llama-cpp is installed for ${facts.platform}-${facts.arch}`,
      hint: "Reinstall gbt with its optional dependencies (`npm ci`, without --omit=optional), or use --gpu off.",
    };
  }
  if (!facts.usableBackends.includes(backend)) {
    if (!hasDeviceFor(backend, facts.gpuVendors)) {
      return {
        reason: `no ${backend === "cuda" ? "NVIDIA " : ""}GPU was found on this machine`,
        hint: "Run on a machine with a GPU, or use --gpu off (or auto) for CPU inference.",
      };
    }
    return {
      tryBinary: backend,
      reason: `a GPU is present but the ${name} driver or runtime libraries are missing`,
      hint:
        backend === "cuda"
          ? "Install the NVIDIA driver and CUDA runtime (check `nvidia-smi`), or use --gpu vulkan / off."
          : `Install the ${name} driver for this GPU, or use --gpu off.`,
    };
  }
  return undefined;
}

/** Decides which backend a GPU choice runs on. Pure: every fact comes in `facts`. */
export function decideGpu(choice: GpuChoice, facts: GpuFacts): GpuDecision {
  if (choice === "off") return { ok: true, backend: "cpu", reason: "the GPU is turned off (--gpu off)" };
  if (choice !== "auto") {
    const blocked = blocker(choice, facts);
    if (blocked) return { ok: false, backend: choice, ...blocked };
    return { ok: true, backend: choice, reason: `${label[choice]} was requested and is available` };
  }
  if (facts.gpuVendors.length === 0 && facts.usableBackends.length === 0) {
    return { ok: true, backend: "cpu", reason: "no GPU was found on this machine" };
  }
  const order: GpuBackend[] = ["metal", "cuda", "vulkan"];
  const candidates = order.filter((backend) => facts.validBackends.includes(backend));
  const usable = candidates.find((backend) => blocker(backend, facts) === undefined);
  if (usable) return { ok: true, backend: usable, reason: `${label[usable]} is the best GPU backend here` };
  // The reason of the most specific failure: a backend whose device is present says more than "no GPU".
  const reasons = candidates.map((backend) => ({ backend, blocked: blocker(backend, facts) }));
  const withDevice = reasons.find(
    ({ backend, blocked }) =>
      blocked && hasDeviceFor(backend, facts.gpuVendors) && !/no .*GPU/.test(blocked.reason),
  );
  const chosen = withDevice ?? reasons[0];
  return {
    ok: true,
    backend: "cpu",
    reason: chosen?.blocked?.reason ?? `llama.cpp has no GPU backend on ${facts.platform}-${facts.arch}`,
    ...(chosen?.blocked?.tryBinary ? { tryBinary: chosen.blocked.tryBinary } : {}),
  };
}
