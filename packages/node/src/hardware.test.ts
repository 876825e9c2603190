import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as systeminformation from "systeminformation";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  cpuFeatures,
  type HardwareProfile,
  hardwareProfileSchema,
  parseNvidiaSmiCsv,
  probeHardware,
  type SystemInformation,
} from "./hardware.js";

const temps: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "gbt-hardware-"));
  temps.push(dir);
  return dir;
}
afterEach(async () => {
  await Promise.all(temps.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

const never = <T>(): Promise<T> => new Promise<T>(() => {});

/**
 * The real systeminformation with cpu, cpuFlags, mem and osInfo read once up front: tests that
 * bound one probe tightly (100 ms) must not fail because a busy machine is slow on the others.
 */
let quickSi: SystemInformation = systeminformation;
beforeAll(async () => {
  const [cpu, cpuFlags, mem, osInfo] = await Promise.all([
    systeminformation.cpu(),
    systeminformation.cpuFlags(),
    systeminformation.mem(),
    systeminformation.osInfo(),
  ]);
  quickSi = {
    ...systeminformation,
    cpu: async () => cpu,
    cpuFlags: async () => cpuFlags,
    mem: async () => mem,
    osInfo: async () => osInfo,
  };
}, 60_000);

/** A systeminformation whose every call hangs: the worst machine there is. */
const hangingSi: SystemInformation = {
  graphics: never,
  cpu: never,
  cpuFlags: never,
  mem: never,
  osInfo: never,
};

/** Writes an executable `nvidia-smi` shell script into a fresh dir and returns the dir. */
async function fakeNvidiaSmi(script: string): Promise<string> {
  const dir = await tempDir();
  const path = join(dir, "nvidia-smi");
  await writeFile(path, `#!/bin/sh\n${script}\n`);
  await chmod(path, 0o755);
  return dir;
}

function expectValid(profile: HardwareProfile): void {
  expect(hardwareProfileSchema.parse(profile)).toEqual(profile);
  expect(JSON.parse(JSON.stringify(profile))).toEqual(profile);
}

describe("probeHardware on this machine", () => {
  it("reports CPU, memory, disk and OS, and no GPU without crashing", async () => {
    const dataDir = await tempDir();
    // Generous bound: the point here is the real values, not speed on a busy CI machine.
    const profile = await probeHardware({ dataDir, timeoutMs: 20_000 });
    expectValid(profile);
    expect(profile.warnings).toEqual([]);
    expect(Array.isArray(profile.gpus)).toBe(true);
    expect(profile.cpu?.logicalCores).toBeGreaterThan(0);
    expect(profile.cpu?.physicalCores).toBeGreaterThan(0);
    expect(profile.cpu?.flags).not.toBeNull();
    expect(profile.memory?.totalMB).toBeGreaterThan(0);
    expect(profile.memory?.availableMB).toBeLessThanOrEqual(profile.memory?.totalMB ?? 0);
    expect(profile.disk?.path).toBe(dataDir);
    expect(profile.disk?.freeMB).toBeGreaterThan(0);
    expect(profile.disk?.totalMB).toBeGreaterThanOrEqual(profile.disk?.freeMB ?? Number.POSITIVE_INFINITY);
    expect(profile.os).toMatchObject({ platform: process.platform, arch: expect.any(String) });
  });

  it("measures the disk of the nearest existing parent when the data dir does not exist yet", async () => {
    const parent = await tempDir();
    const dataDir = join(parent, "not", "yet", "created");
    const profile = await probeHardware({ dataDir, timeoutMs: 20_000 });
    expect(profile.disk).toMatchObject({ path: dataDir, freeMB: expect.any(Number) });
    expect(profile.disk?.totalMB).toBeGreaterThan(0);
  });
});

describe("probeHardware when a probe fails", () => {
  it("returns within its bound with gpus unknown when graphics() hangs forever", {
    timeout: 5_000,
  }, async () => {
    const dataDir = await tempDir();
    const profile = await probeHardware({
      dataDir,
      timeoutMs: 100,
      si: { ...quickSi, graphics: never },
      env: { PATH: "" },
    });
    expectValid(profile);
    expect(profile.gpus).toBeNull();
    expect(profile.warnings).toEqual([
      expect.stringMatching(/^gpus: .*graphics\(\).*timed out after 100 ms/),
    ]);
  });

  it("keeps the rest of the profile when graphics() and cpuFlags() throw", { timeout: 5_000 }, async () => {
    const dataDir = await tempDir();
    const profile = await probeHardware({
      dataDir,
      timeoutMs: 10_000,
      si: {
        ...systeminformation,
        graphics: () => Promise.reject(new Error("driver is wedged")),
        cpuFlags: () => {
          throw new Error("no /proc/cpuinfo");
        },
      },
      env: { PATH: "" },
    });
    expectValid(profile);
    expect(profile.gpus).toBeNull();
    expect(profile.cpu?.logicalCores).toBeGreaterThan(0);
    expect(profile.cpu?.flags).toBeNull();
    expect(profile.memory?.totalMB).toBeGreaterThan(0);
    expect(profile.warnings).toEqual([
      expect.stringMatching(/^gpus: .*driver is wedged/),
      expect.stringMatching(/^cpu\.flags: .*no \/proc\/cpuinfo/),
    ]);
  });

  it("returns a profile of unknowns when every systeminformation call hangs", {
    timeout: 5_000,
  }, async () => {
    const dataDir = await tempDir();
    const profile = await probeHardware({ dataDir, timeoutMs: 100, si: hangingSi, env: { PATH: "" } });
    expectValid(profile);
    expect(profile).toMatchObject({ gpus: null, cpu: null, memory: null, os: null });
    expect(profile.disk?.path).toBe(dataDir);
    expect(profile.warnings.map((warning) => warning.split(":")[0])).toEqual([
      "gpus",
      "cpu",
      "cpu.flags",
      "memory",
      "os",
    ]);
  });
});

describe.skipIf(process.platform === "win32")("probeHardware with nvidia-smi", () => {
  const csv = [
    "0, GPU-2a6b5c1e-0d1f-4c7e-9a55-3f0e1d2c3b4a, NVIDIA H100 80GB HBM3, 81559, 550.54.15, 00000000:18:00.0",
    "1, GPU-7f3e2d1c-0b9a-4876-8c5d-4e3f2a1b0c9d, NVIDIA GeForce RTX 4090, 24564, 550.54.15, 00000000:3B:00.0",
  ].join("\n");
  const siWith = (controllers: Partial<systeminformation.Systeminformation.GraphicsControllerData>[]) => ({
    ...quickSi,
    graphics: async () =>
      ({ controllers, displays: [] }) as unknown as systeminformation.Systeminformation.GraphicsData,
  });

  it("runs nvidia-smi from PATH with an argument array and replaces NVIDIA entries with its rows", async () => {
    const dir = await fakeNvidiaSmi(`printf '%s\\n' "$@" > "$(dirname "$0")/args"\ncat <<'EOF'\n${csv}\nEOF`);
    const profile = await probeHardware({
      dataDir: dir,
      timeoutMs: 10_000,
      env: { PATH: dir },
      si: siWith([
        {
          vendor: "Intel Corporation",
          model: "UHD Graphics 770",
          vram: 0,
          vramDynamic: true,
          bus: "Onboard",
        },
        {
          vendor: "NVIDIA Corporation",
          model: "AD102 [GeForce RTX 4090]",
          vram: 24564,
          vramDynamic: false,
          bus: "PCI",
        },
      ]),
    });
    expectValid(profile);
    expect(await readFile(join(dir, "args"), "utf8")).toBe(
      "--query-gpu=index,uuid,name,memory.total,driver_version,pci.bus_id\n--format=csv,noheader,nounits\n",
    );
    expect(profile.gpus).toEqual([
      {
        vendor: "Intel Corporation",
        model: "UHD Graphics 770",
        vramMB: null,
        driver: null,
        uuid: null,
        busId: null,
        source: "systeminformation",
      },
      {
        vendor: "NVIDIA",
        model: "NVIDIA H100 80GB HBM3",
        vramMB: 81_559,
        driver: "550.54.15",
        uuid: "GPU-2a6b5c1e-0d1f-4c7e-9a55-3f0e1d2c3b4a",
        busId: "00000000:18:00.0",
        source: "nvidia-smi",
      },
      expect.objectContaining({ model: "NVIDIA GeForce RTX 4090", vramMB: 24_564, source: "nvidia-smi" }),
    ]);
    expect(profile.warnings).toEqual([]);
  });

  it("bounds a hanging nvidia-smi and keeps systeminformation's GPUs", { timeout: 5_000 }, async () => {
    const dir = await fakeNvidiaSmi("exec sleep 30");
    const profile = await probeHardware({
      dataDir: dir,
      timeoutMs: 200,
      env: { PATH: dir },
      si: siWith([
        { vendor: "NVIDIA", model: "GeForce RTX 3060", vram: 12_288, vramDynamic: false, bus: "PCI" },
      ]),
    });
    expectValid(profile);
    expect(profile.gpus).toEqual([expect.objectContaining({ model: "GeForce RTX 3060", vramMB: 12_288 })]);
    expect(profile.warnings).toEqual([expect.stringMatching(/^gpus: nvidia-smi failed: /)]);
  });

  it("reports an nvidia-smi that fails (driver not loaded) as a warning", async () => {
    const dir = await fakeNvidiaSmi(
      "echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.' >&2; exit 9",
    );
    const profile = await probeHardware({
      dataDir: dir,
      timeoutMs: 10_000,
      env: { PATH: dir },
      si: siWith([]),
    });
    expectValid(profile);
    expect(profile.gpus).toEqual([]);
    expect(profile.warnings).toEqual([expect.stringMatching(/^gpus: nvidia-smi failed: .*exit code 9/)]);
  });
});

describe("parseNvidiaSmiCsv", () => {
  it("keeps names with commas and maps [N/A] to null", () => {
    expect(parseNvidiaSmiCsv("0, [N/A], Tesla T4, rev 2, [N/A], 535.104.05, 00000000:00:1E.0\n\n")).toEqual([
      {
        vendor: "NVIDIA",
        model: "Tesla T4, rev 2",
        vramMB: null,
        driver: "535.104.05",
        uuid: null,
        busId: "00000000:00:1E.0",
        source: "nvidia-smi",
      },
    ]);
    expect(parseNvidiaSmiCsv("No devices were found")).toEqual([]);
  });
});

describe("cpuFeatures", () => {
  it("maps the flags llama.cpp cares about", () => {
    expect(cpuFeatures("fpu sse2 avx fma f16c avx2 avx512f", "x64")).toEqual({
      avx: true,
      avx2: true,
      avx512f: true,
      fma: true,
      f16c: true,
      neon: false,
    });
    expect(cpuFeatures("fp asimd evtstrm", "arm")).toMatchObject({ neon: true, avx: false });
    // macOS on Apple Silicon reports no flags; NEON is part of arm64.
    expect(cpuFeatures("", "arm64")).toMatchObject({ neon: true, avx2: false });
  });
});
