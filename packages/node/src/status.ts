/**
 * `gbt status`: the node profile at any time, from the config and keystore on disk and fresh
 * probes of the hardware and backends. Reads only, with one exception: an unclaimed node (no
 * owners) that has no claim code yet gets one in claim.json, so that status and `gbt serve` show
 * the same code.
 */
import { GbtError, readKeystore } from "@gbt/protocol";
import type { GbtPaths } from "@gbt/store";
import { ensureClaimCode, readClaimCode } from "./claim/claim-code.js";
import { type GpuChoice, loadConfig } from "./config.js";
import type { DetectedBackend } from "./detect-backends.js";
import type { GpuStatus } from "./gpu/resolve-gpu.js";
import type { GpuInfo, HardwareProfile } from "./hardware.js";
import { apiKeyState, gpuOfBackend, type NodeClaimState, type NodeProfile, profileOf } from "./setup.js";

export interface NodeStatusParameters {
  paths: GbtPaths;
  probeHardware: () => Promise<HardwareProfile>;
  detectBackends: () => Promise<DetectedBackend[]>;
  /** The GPU resolver (default the real one). */
  resolveGpu?: (choice: GpuChoice, gpus: readonly GpuInfo[] | null) => Promise<GpuStatus>;
}

export async function nodeStatus(parameters: NodeStatusParameters): Promise<NodeProfile> {
  const { paths } = parameters;
  const config = await loadConfig(paths.configFile);
  const keystore = await readKeystore(paths.nodeKeystore);
  if (keystore.address !== config.node.address) {
    throw new GbtError(
      "CONFIG_INVALID",
      `The config ${paths.configFile} is invalid at node.address: it is not the keystore's address.`,
      {
        details: { path: paths.configFile, field: "node.address", keystore: keystore.address },
        hint: "Run `gbt setup` to bring the config back in line with the keystore.",
      },
    );
  }
  const [hardware, detectedBackends] = await Promise.all([
    parameters.probeHardware(),
    parameters.detectBackends(),
  ]);
  // A GPU that is no longer usable (driver gone) is reported, not thrown: status only reads.
  const gpu = await gpuOfBackend(config.backend, hardware.gpus, parameters.resolveGpu).catch(
    (error: unknown): GpuStatus => ({
      requested: config.backend.gpu ?? "auto",
      backend: "cpu",
      devices: [],
      vramTotalMB: null,
      vramFreeMB: null,
      driver: null,
      summary: `No inference: ${error instanceof Error ? error.message : String(error)}`,
    }),
  );
  return profileOf(config, paths, keystore.encrypted, hardware, detectedBackends, {
    gpu,
    backendApiKey: await apiKeyState(config.backend),
    claim: await claimState(paths, config.node.owners.length > 0),
  });
}

/** Claimed, or the code to claim with (made now if there is none; null if it cannot be written). */
async function claimState(paths: GbtPaths, claimed: boolean): Promise<NodeClaimState> {
  if (claimed) return { claimed, code: null };
  const code = (await readClaimCode(paths)) ?? (await ensureClaimCode(paths).catch(() => undefined));
  return { claimed, code: code ?? null };
}
