/**
 * The hardware probe: what this machine can offer to inference (GPUs, CPU features that pick a
 * llama.cpp build, memory, disk under the data dir, OS). The profile goes into the node profile
 * and signed records, so it is plain JSON (integers in MB, no bigint) with a zod schema.
 *
 * Every sub-probe runs in parallel under its own time bound and is isolated: a probe that throws
 * or hangs (a wedged driver, a dead network mount) leaves its part `null` and adds a warning, and
 * the rest of the profile is still returned. Probing never throws.
 */
import { constants } from "node:fs";
import { access, statfs } from "node:fs/promises";
import { delimiter, dirname, join, resolve } from "node:path";
import { schemas } from "@gbt/protocol";
import { execa } from "execa";
import * as systeminformation from "systeminformation";
import { z } from "zod";

/** Default bound for each sub-probe, in milliseconds. */
export const DEFAULT_HARDWARE_PROBE_TIMEOUT_MS = 3_000;

const MAX_TEXT = 256;
const MAX_GPUS = 64;
const MAX_WARNINGS = 32;

const text = schemas.boundedText(MAX_TEXT);
const megabytes = schemas.uint64;

/** One GPU. `null` fields are unknown on this machine. */
export const gpuInfoSchema = z.strictObject({
  vendor: text,
  model: text,
  /** Dedicated memory in MB (null when unknown, or shared with the CPU). */
  vramMB: megabytes.nullable(),
  driver: text.nullable(),
  /** Stable device id where the driver reports one (e.g. NVIDIA `GPU-…`). */
  uuid: text.nullable(),
  /** PCI bus id, e.g. `00000000:18:00.0`. */
  busId: text.nullable(),
  /** Which probe reported this GPU. */
  source: z.enum(["systeminformation", "nvidia-smi"]),
});
export type GpuInfo = z.infer<typeof gpuInfoSchema>;

/** CPU features that decide which llama.cpp kernels run fast here. */
export const cpuFeatureNames = ["avx", "avx2", "avx512f", "fma", "f16c", "neon"] as const;
export type CpuFeature = (typeof cpuFeatureNames)[number];

export const cpuInfoSchema = z.strictObject({
  /** Manufacturer and brand, e.g. "AMD EPYC" or "Apple M2". */
  brand: text.nullable(),
  physicalCores: z.number().int().min(1).max(65_536).nullable(),
  logicalCores: z.number().int().min(1).max(65_536).nullable(),
  /** Null when the flags could not be read (not the same as "none present"). */
  flags: z
    .strictObject({
      avx: z.boolean(),
      avx2: z.boolean(),
      avx512f: z.boolean(),
      fma: z.boolean(),
      f16c: z.boolean(),
      neon: z.boolean(),
    } satisfies Record<CpuFeature, z.ZodBoolean>)
    .nullable(),
});
export type CpuInfo = z.infer<typeof cpuInfoSchema>;

/** The hardware profile. Each part is `null` when its probe failed; `warnings` says why. */
export const hardwareProfileSchema = z.strictObject({
  gpus: z.array(gpuInfoSchema).max(MAX_GPUS).nullable(),
  cpu: cpuInfoSchema.nullable(),
  memory: z.strictObject({ totalMB: megabytes, availableMB: megabytes }).nullable(),
  /** The filesystem holding the data dir (where models are stored). */
  disk: z.strictObject({ path: z.string().max(4096), totalMB: megabytes, freeMB: megabytes }).nullable(),
  os: z
    .strictObject({
      platform: text,
      distro: text.nullable(),
      release: text.nullable(),
      arch: text,
      kernel: text.nullable(),
    })
    .nullable(),
  /** One line per part that could not be probed (or was only partly probed). */
  warnings: z.array(z.string().max(512)).max(MAX_WARNINGS),
});
export type HardwareProfile = z.infer<typeof hardwareProfileSchema>;

/** The parts of systeminformation the probe uses; the whole module satisfies it. */
export type SystemInformation = Pick<
  typeof systeminformation,
  "graphics" | "cpu" | "cpuFlags" | "mem" | "osInfo"
>;

export interface ProbeHardwareOptions {
  /** The node's data dir; the disk figures are for the filesystem holding it (it need not exist yet). */
  dataDir: string;
  /** Bound for each sub-probe in ms (default 3000). */
  timeoutMs?: number;
  /** systeminformation, injectable for tests. */
  si?: SystemInformation;
  /** Environment used to find `nvidia-smi` on PATH. */
  env?: NodeJS.ProcessEnv;
}

type Outcome<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Runs `run` with a time bound; never rejects. The timer is always cleared. */
async function bounded<T>(timeoutMs: number, run: () => Promise<T>): Promise<Outcome<T>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Outcome<T>>((resolveTimeout) => {
    timer = setTimeout(
      () => resolveTimeout({ ok: false, reason: `timed out after ${timeoutMs} ms` }),
      timeoutMs,
    );
  });
  try {
    const attempt = (async (): Promise<Outcome<T>> => ({ ok: true, value: await run() }))();
    return await Promise.race([attempt, timeout]);
  } catch (error) {
    return { ok: false, reason: failureReason(error) };
  } finally {
    clearTimeout(timer);
  }
}

function failureReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return clip(message.split("\n")[0] || "failed", 200);
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]+/g;

/** Strips control characters and bounds the length, so hardware strings always fit the schema. */
function clip(value: string, max = MAX_TEXT): string {
  return value.replace(CONTROL_CHARACTERS, " ").trim().slice(0, max);
}

function textOrNull(value: string | null | undefined): string | null {
  const clipped = typeof value === "string" ? clip(value) : "";
  return clipped === "" ? null : clipped;
}

function countOrNull(value: unknown): number | null {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 65_536 ? value : null;
}

function mbOrNull(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? Math.round(value) : null;
}

const toMB = (bytes: number): number => Math.floor(bytes / (1024 * 1024));

/** Probes this machine. Never throws: a part that cannot be probed in time is `null` with a warning. */
export async function probeHardware(options: ProbeHardwareOptions): Promise<HardwareProfile> {
  const si = options.si ?? systeminformation;
  const timeoutMs = options.timeoutMs ?? DEFAULT_HARDWARE_PROBE_TIMEOUT_MS;
  const env = options.env ?? process.env;
  const warnings: string[] = [];

  const [graphics, nvidia, cpu, cpuFlags, mem, disk, os] = await Promise.all([
    bounded(timeoutMs, () => si.graphics()),
    bounded(timeoutMs, () => queryNvidiaSmi(env, timeoutMs)),
    bounded(timeoutMs, () => si.cpu()),
    bounded(timeoutMs, () => si.cpuFlags()),
    bounded(timeoutMs, () => si.mem()),
    bounded(timeoutMs, () => diskOf(options.dataDir)),
    bounded(timeoutMs, () => si.osInfo()),
  ]);

  if (!graphics.ok) warnings.push(`gpus: systeminformation graphics() failed: ${graphics.reason}`);
  if (!nvidia.ok) warnings.push(`gpus: nvidia-smi failed: ${nvidia.reason}`);
  const gpus = mergeGpus(graphics.ok ? graphics.value.controllers : null, nvidia.ok ? nvidia.value : null);

  if (!cpu.ok) warnings.push(`cpu: systeminformation cpu() failed: ${cpu.reason}`);
  if (!cpuFlags.ok) warnings.push(`cpu.flags: systeminformation cpuFlags() failed: ${cpuFlags.reason}`);
  const cpuInfo: CpuInfo | null =
    cpu.ok || cpuFlags.ok
      ? {
          brand: cpu.ok
            ? textOrNull([cpu.value.manufacturer, cpu.value.brand].filter(Boolean).join(" "))
            : null,
          physicalCores: cpu.ok ? countOrNull(cpu.value.physicalCores) : null,
          logicalCores: cpu.ok ? countOrNull(cpu.value.cores) : null,
          flags: cpuFlags.ok ? cpuFeatures(cpuFlags.value, process.arch) : null,
        }
      : null;

  if (!mem.ok) warnings.push(`memory: systeminformation mem() failed: ${mem.reason}`);
  if (!disk.ok) warnings.push(`disk: statfs of ${options.dataDir} failed: ${disk.reason}`);
  if (!os.ok) warnings.push(`os: systeminformation osInfo() failed: ${os.reason}`);

  return {
    gpus,
    cpu: cpuInfo,
    memory: mem.ok ? { totalMB: toMB(mem.value.total), availableMB: toMB(mem.value.available) } : null,
    disk: disk.ok ? disk.value : null,
    os: os.ok
      ? {
          platform: clip(os.value.platform) || process.platform,
          distro: textOrNull(os.value.distro),
          release: textOrNull(os.value.release),
          arch: clip(os.value.arch) || process.arch,
          kernel: textOrNull(os.value.kernel),
        }
      : null,
    warnings: warnings.slice(0, MAX_WARNINGS),
  };
}

/**
 * The llama.cpp-relevant features from a space-separated flag list. On arm64 NEON (ASIMD) is part
 * of the architecture, and macOS reports no flags at all, so the architecture decides there.
 */
export function cpuFeatures(flagList: string, arch: string): Record<CpuFeature, boolean> {
  const flags = new Set(flagList.toLowerCase().split(/\s+/).filter(Boolean));
  return {
    avx: flags.has("avx"),
    avx2: flags.has("avx2"),
    avx512f: flags.has("avx512f"),
    fma: flags.has("fma"),
    f16c: flags.has("f16c"),
    neon: flags.has("neon") || flags.has("asimd") || arch === "arm64",
  };
}

/**
 * GPUs from systeminformation, with NVIDIA entries replaced by nvidia-smi's rows when it answered
 * (it knows UUIDs and exact VRAM). Null only when no source could be read.
 */
function mergeGpus(
  controllers: systeminformation.Systeminformation.GraphicsControllerData[] | null,
  nvidia: GpuInfo[] | null,
): GpuInfo[] | null {
  if (controllers === null && nvidia === null) return null;
  const fromSi: GpuInfo[] = (controllers ?? []).map((controller) => ({
    vendor: clip(controller.vendor) || "unknown",
    model: clip(controller.model || controller.name || "") || "unknown",
    vramMB: controller.vramDynamic ? null : mbOrNull(controller.memoryTotal ?? controller.vram),
    driver: textOrNull(controller.driverVersion),
    uuid: null,
    busId: textOrNull(controller.pciBus ?? controller.busAddress),
    source: "systeminformation",
  }));
  const merged =
    nvidia && nvidia.length > 0
      ? [...fromSi.filter((gpu) => !/nvidia/i.test(gpu.vendor)), ...nvidia]
      : fromSi;
  return merged.slice(0, MAX_GPUS);
}

const NVIDIA_SMI_FIELDS = "index,uuid,name,memory.total,driver_version,pci.bus_id";

/**
 * Asks nvidia-smi for exact GPU facts. Resolves to null when the binary is not installed (not an
 * error: most machines have no NVIDIA GPU). Runs the absolute path found on PATH with an argument
 * array, no shell and a kill timeout.
 */
async function queryNvidiaSmi(env: NodeJS.ProcessEnv, timeoutMs: number): Promise<GpuInfo[] | null> {
  const binary = await findExecutable(process.platform === "win32" ? "nvidia-smi.exe" : "nvidia-smi", env);
  if (!binary) return null;
  const result = await execa(binary, [`--query-gpu=${NVIDIA_SMI_FIELDS}`, "--format=csv,noheader,nounits"], {
    shell: false,
    stdin: "ignore",
    timeout: timeoutMs,
    forceKillAfterDelay: 500,
    env: { LC_ALL: "C" },
    maxBuffer: 1024 * 1024,
    reject: false,
  });
  if (result.failed) {
    // nvidia-smi explains itself on stdout or stderr ("couldn't communicate with the NVIDIA driver").
    const said = `${result.stderr}\n${result.stdout}`.split("\n").find((line) => line.trim() !== "");
    const how = result.timedOut
      ? `timed out after ${timeoutMs} ms`
      : `exit code ${result.exitCode ?? result.signal}`;
    throw new Error(said ? `${how}: ${said}` : how);
  }
  const { stdout } = result;
  return parseNvidiaSmiCsv(stdout);
}

/** Parses `nvidia-smi --query-gpu=index,uuid,name,memory.total,driver_version,pci.bus_id` CSV rows. */
export function parseNvidiaSmiCsv(stdout: string): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    const parts = line.split(",").map((part) => part.trim());
    if (parts.length < 6) continue;
    // The name is the only field that could hold a comma: take the fixed fields from both ends.
    const [, uuid] = parts;
    const [memoryTotal, driver, busId] = parts.slice(-3);
    const name = parts.slice(2, -3).join(", ");
    const known = (value: string | undefined) =>
      value === undefined || /^\[.*\]$/.test(value) ? null : value;
    const vram = Number(known(memoryTotal) ?? Number.NaN);
    gpus.push({
      vendor: "NVIDIA",
      model: clip(name) || "unknown",
      vramMB: Number.isFinite(vram) && vram >= 0 ? Math.round(vram) : null,
      driver: textOrNull(known(driver)),
      uuid: textOrNull(known(uuid)),
      busId: textOrNull(known(busId)),
      source: "nvidia-smi",
    });
  }
  return gpus;
}

async function findExecutable(name: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const dirs = (env.PATH ?? env.Path ?? "").split(delimiter).filter(Boolean);
  // The NVIDIA driver on Windows installs nvidia-smi here, often off PATH.
  if (process.platform === "win32") dirs.push(join(env.SystemRoot ?? "C:\\Windows", "System32"));
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Total and free (for this user) space of the filesystem holding `dir`, or its nearest existing parent. */
async function diskOf(dir: string): Promise<{ path: string; totalMB: number; freeMB: number }> {
  let path = resolve(dir);
  for (;;) {
    try {
      const stats = await statfs(path);
      const toMBOf = (blocks: number) => Math.floor((blocks * stats.bsize) / (1024 * 1024));
      return { path: resolve(dir), totalMB: toMBOf(stats.blocks), freeMB: toMBOf(stats.bavail) };
    } catch (error) {
      const parent = dirname(path);
      if ((error as NodeJS.ErrnoException).code !== "ENOENT" || parent === path) throw error;
      path = parent;
    }
  }
}
