/**
 * The hardware scan as setup mode shows it: a few labelled lines (CPU, memory, GPUs, backends)
 * built from the probe's profile and the detected backends. What the setup page and
 * `/setup/info` carry as `hardware` when `gbt serve` passes this summary.
 */
import type { DetectedBackend } from "../detect-backends.js";
import type { HardwareProfile } from "../hardware.js";

export interface SetupHardwareSummary {
  cpu: string;
  memory: string;
  gpus: string;
  backends: string;
  warnings: string[];
}

const gb = (mb: number) => `${(mb / 1024).toFixed(1)} GB`;

/** A short, human summary of the scan; unknown parts say so. */
export function setupHardwareSummary(
  hardware: HardwareProfile,
  backends: readonly DetectedBackend[] = [],
): SetupHardwareSummary {
  const cpu = hardware.cpu;
  const available = backends.filter((backend) => backend.available);
  return {
    cpu: cpu
      ? `${cpu.brand ?? "unknown CPU"}, ${cpu.physicalCores ?? "?"} cores / ${cpu.logicalCores ?? "?"} threads`
      : "unknown",
    memory: hardware.memory
      ? `${gb(hardware.memory.totalMB)} (${gb(hardware.memory.availableMB)} available)`
      : "unknown",
    gpus:
      hardware.gpus === null
        ? "unknown (probe failed)"
        : hardware.gpus.length === 0
          ? "none"
          : hardware.gpus
              .map((g) => `${g.vendor} ${g.model}${g.vramMB ? ` ${gb(g.vramMB)}` : ""}`)
              .join("; "),
    backends: available.length
      ? available.map((b) => (b.url ? `${b.name} at ${b.url}` : b.name)).join("; ")
      : "none found",
    warnings: hardware.warnings.slice(0, 8),
  };
}
