/**
 * `gbt status`: the node profile at any time, from the config and keystore on disk and fresh
 * probes of the hardware and backends. Reads only; never writes.
 */
import { GbtError, readKeystore } from "@gbt/protocol";
import type { GbtPaths } from "@gbt/store";
import { loadConfig } from "./config.js";
import type { DetectedBackend } from "./detect-backends.js";
import type { HardwareProfile } from "./hardware.js";
import { type NodeProfile, profileOf } from "./setup.js";

export interface NodeStatusParameters {
  paths: GbtPaths;
  probeHardware: () => Promise<HardwareProfile>;
  detectBackends: () => Promise<DetectedBackend[]>;
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
  return profileOf(config, paths, keystore.encrypted, hardware, detectedBackends);
}
