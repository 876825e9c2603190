/** The human summary of a node profile, shared by `gbt setup` and `gbt status`. */
import type { NodeProfile } from "@gbt/node";
import { formatBytes, labelTable } from "./format.js";

const modeNote: Record<string, string> = {
  local: "serves this machine only",
  managed: "accepts signed jobs from its owners; registers with a gateway",
  network: "offers capacity to pooled traffic",
};

/** `claimed`, or the code and the command that claims the node. */
function claimText(claim: NonNullable<NodeProfile["claim"]>): string {
  if (claim.claimed) return "claimed";
  if (claim.code === null) return "unclaimed (start `gbt serve` to get a claim code)";
  return `unclaimed (code ${claim.code}: run gbt owner claim ${claim.code} --key-file owner.key)`;
}

export function renderProfile(profile: NodeProfile): string {
  const { hardware } = profile;
  const cpu = hardware.cpu;
  const flags = cpu?.flags
    ? Object.entries(cpu.flags)
        .filter(([, on]) => on)
        .map(([name]) => name)
    : [];
  const cpuText = cpu
    ? `${cpu.brand ?? "unknown CPU"}, ${cpu.physicalCores ?? "?"} cores / ${cpu.logicalCores ?? "?"} threads${flags.length ? ` (${flags.join(", ")})` : ""}`
    : "unknown";
  const gpus =
    hardware.gpus === null
      ? "unknown (probe failed)"
      : hardware.gpus.length === 0
        ? "none"
        : hardware.gpus
            .map((g) => `${g.vendor} ${g.model}${g.vramMB ? ` ${formatBytes(g.vramMB)}` : ""}`)
            .join("; ");
  const backend = profile.backend;
  const backendText =
    backend.kind === "embedded"
      ? `embedded llama.cpp (in process), model ${backend.model ?? "gbt-test-tiny"}${
          (backend.model ?? "gbt-test-tiny") === "gbt-test-tiny"
            ? " (generated pipeline-test model: its text is noise)"
            : ""
        }`
      : `${backend.kind} at ${backend.url}${backend.model ? `, model ${backend.model}` : ""}${
          profile.backendApiKey
            ? ` (cloud account; API key ${profile.backendApiKey.encrypted ? "encrypted" : "unencrypted, mode 0600"} at ${profile.backendApiKey.path})`
            : ""
        }`;
  const found = profile.detectedBackends
    .filter((b) => b.kind !== "embedded" && b.available)
    .map((b) => `${b.name} at ${b.url} (${b.models.length} models)`);
  const rows: Array<[string, string]> = [
    ["Address", profile.address],
    [
      "Keystore",
      `${profile.keystore.path} (${profile.keystore.encrypted ? "encrypted" : "unencrypted, mode 0600"})`,
    ],
    ["Owners", profile.owners.length ? profile.owners.join(", ") : "none (add with `gbt setup --owner 0x…`)"],
    ...(profile.claim ? [["Claim", claimText(profile.claim)] as [string, string]] : []),
    ["Mode", `${profile.mode} (${modeNote[profile.mode] ?? ""})`],
    ["Backend", backendText],
    ...(profile.gpu ? [["Inference on", profile.gpu.summary] as [string, string]] : []),
    ["Also found", found.length ? found.join("; ") : "no other backend running"],
    ["CPU", cpuText],
    [
      "Memory",
      hardware.memory
        ? `${formatBytes(hardware.memory.totalMB)} (${formatBytes(hardware.memory.availableMB)} available)`
        : "unknown",
    ],
    ["GPUs", gpus],
    [
      "Disk",
      hardware.disk
        ? `${formatBytes(hardware.disk.freeMB)} free of ${formatBytes(hardware.disk.totalMB)} at ${hardware.disk.path}`
        : "unknown",
    ],
    [
      "OS",
      hardware.os
        ? `${hardware.os.distro ?? hardware.os.platform} ${hardware.os.release ?? ""} (${hardware.os.arch})`.replace(
            /\s+/g,
            " ",
          )
        : "unknown",
    ],
  ];
  for (const warning of hardware.warnings) rows.push(["Warning", warning]);
  return labelTable(rows);
}
