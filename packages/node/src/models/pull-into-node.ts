/**
 * `gbt model pull` as a service: pulls a source into this node's models dir with the node's own
 * settings (backend kind, chain, gateway from its config when set up; the embedded backend and the
 * flags' gateway otherwise). The owner runs it, so every source kind is allowed; plain http only
 * on loopback and only when asked for (tests, a local mirror).
 */

import { createGatewayClient } from "@gbt/protocol";
import type { GbtPaths } from "@gbt/store";
import { createOllamaBackend } from "../backends/ollama.js";
import { readConfigIfPresent } from "../config.js";
import { type PullModelOptions, type PullModelResult, pullModel } from "./pull-model.js";

export const DEFAULT_REGISTRY_GATEWAY_URL = "http://127.0.0.1:8080";

export interface PullIntoNodeOptions
  extends Pick<
    PullModelOptions,
    "as" | "sha256" | "signal" | "onProgress" | "vramMiB" | "chainId" | "hfEndpoint" | "download"
  > {
  paths: GbtPaths;
  /** The gateway whose registry resolves NAME@VERSION (default: GBT_GATEWAY_URL, the config's gateway, the local one). */
  gatewayUrl?: string;
  /** Hosts (host or host:port) a redirect may go to besides the source's own. */
  allowedHosts?: readonly string[];
  allowLoopbackHttp?: boolean;
  /** Notes for the user (registry retries), on stderr. */
  onNote?: (message: string) => void;
  env?: NodeJS.ProcessEnv;
}

/** Pulls `source` into the node's models dir; see pullModel for the sources and guarantees. */
export async function pullIntoNode(source: string, options: PullIntoNodeOptions): Promise<PullModelResult> {
  const env = options.env ?? process.env;
  const config = await readConfigIfPresent(options.paths.configFile);
  const backendKind = config?.backend.kind ?? "embedded";
  const gatewayUrl =
    options.gatewayUrl ?? (env.GBT_GATEWAY_URL || config?.gateway?.url || DEFAULT_REGISTRY_GATEWAY_URL);
  const registry = createGatewayClient({
    url: gatewayUrl,
    ...(options.onNote
      ? {
          onRetry: ({ attempt, delayMs, reason }: { attempt: number; delayMs: number; reason: string }) =>
            options.onNote?.(
              `gateway ${reason}; retrying in ${(delayMs / 1000).toFixed(1)} s (try ${attempt + 1})`,
            ),
        }
      : {}),
    hints: {
      unreachable:
        "Check --gateway (or GBT_GATEWAY_URL) and that the gateway runs; the pull is safe to rerun.",
    },
  });
  const ollama =
    backendKind === "ollama"
      ? createOllamaBackend({ host: config?.backend.url ?? "http://127.0.0.1:11434" })
      : undefined;
  const chainId = options.chainId ?? config?.node.chainId;
  try {
    return await pullModel(source, {
      modelsDir: options.paths.modelsDir,
      backendKind,
      registry,
      policy: {
        ...(options.allowedHosts ? { allowedHosts: options.allowedHosts } : {}),
        ...(options.allowLoopbackHttp ? { allowLoopbackHttp: true } : {}),
      },
      ...(chainId !== undefined ? { chainId } : {}),
      ...(options.as !== undefined ? { as: options.as } : {}),
      ...(options.sha256 !== undefined ? { sha256: options.sha256 } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.vramMiB ? { vramMiB: options.vramMiB } : {}),
      ...(options.hfEndpoint ? { hfEndpoint: options.hfEndpoint } : {}),
      ...(options.download ? { download: options.download } : {}),
      ...(ollama?.pullModel
        ? { ollamaPull: (name, signal) => ollama.pullModel?.(name, undefined, signal) ?? Promise.resolve() }
        : {}),
      env,
    });
  } finally {
    await ollama?.close();
  }
}
