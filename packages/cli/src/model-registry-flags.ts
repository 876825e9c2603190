/**
 * Flags and helpers shared by the `gbt model` registry commands: which gateway (--gateway, else
 * GBT_GATEWAY_URL, else the local default), the registry client with its retries noted on
 * stderr, the admin token for approve/delist, and artifact hashing progress on stderr (one line
 * per artifact and per 1 GiB, never on stdout).
 */

import { createGatewayClient, type GatewayClient } from "@gbt/protocol";
import type { ArtifactProgress } from "@gbt/publish";
import { Args, Flags } from "@oclif/core";
import { gatewayAdminToken } from "./gateway-paths.js";

export const DEFAULT_GATEWAY_URL = "http://127.0.0.1:8080";

export const gatewayUrlFlag = {
  gateway: Flags.string({
    helpValue: "URL",
    description: `Gateway base URL (default: GBT_GATEWAY_URL, else ${DEFAULT_GATEWAY_URL}).`,
  }),
};

export function gatewayUrl(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? (env.GBT_GATEWAY_URL || DEFAULT_GATEWAY_URL);
}

/** The gateway client of the registry commands: each retry printed on stderr, errors naming their flags. */
export function registryClient(
  url: string,
  note: (message: string) => void,
  adminToken?: string,
): GatewayClient {
  return createGatewayClient({
    url,
    ...(adminToken ? { adminToken } : {}),
    onRetry: ({ attempt, delayMs, reason }) =>
      note(`gateway ${reason}; retrying in ${(delayMs / 1000).toFixed(1)} s (try ${attempt + 1})`),
    hints: {
      unreachable:
        "Check --gateway (or GBT_GATEWAY_URL) and that the gateway runs; the command is safe to rerun (a publish is idempotent).",
      adminToken: "Pass --admin-token-file PATH or set GBT_GATEWAY_ADMIN_TOKEN.",
    },
  });
}

/** Progress of artifact hashing as plain stderr lines (CI logs and terminals alike). */
export function hashingProgress(note: (message: string) => void): (progress: ArtifactProgress) => void {
  let lastIndex = -1;
  return (progress) => {
    const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
    if (progress.index !== lastIndex) {
      lastIndex = progress.index;
      note(`hashing ${progress.path} (${mib(progress.totalBytes)})`);
    }
    if (progress.bytes >= progress.totalBytes) note(`  ${progress.path}: ${mib(progress.bytes)} hashed`);
    else if (
      progress.bytes % (1024 * 1024 * 1024) < 64 * 1024 * 1024 &&
      progress.bytes >= 1024 * 1024 * 1024
    ) {
      note(`  ${progress.path}: ${mib(progress.bytes)} of ${mib(progress.totalBytes)}`);
    }
  };
}

export const adminTokenFlags = {
  "admin-token-file": Flags.string({
    helpValue: "PATH",
    description:
      "File holding the gateway's admin token (default: GBT_GATEWAY_ADMIN_TOKEN, else the local gateway's).",
  }),
};

/** The admin token: --admin-token-file, GBT_GATEWAY_ADMIN_TOKEN, or the local gateway's (`gbt gateway serve`, then `gbt up`). */
export function adminToken(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return gatewayAdminToken({}, file, env);
}

/** The argument and flags of the admin's status commands (`gbt model approve|delist`). */
export const modelStatusInputs = {
  args: { model: Args.string({ description: "NAME@VERSION.", required: true }) },
  flags: {
    ...gatewayUrlFlag,
    ...adminTokenFlags,
    reason: Flags.string({ description: "Why (kept with the status, at most 500 characters)." }),
  },
};
