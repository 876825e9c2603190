/**
 * Whether a model's manifest fits this node, checked before a pull and before a model.switch: the
 * node's backend must be one of the manifest's `runtime.backends`, and the GPU memory the backend
 * will use must reach the manifest's `vramBand.minMiB`. Refusals carry the numbers.
 */
import { GbtError, type ModelManifest } from "@gbt/protocol";

export interface ManifestFitOptions {
  /** The node's backend kind (embedded, ollama, openai). */
  backendKind: string;
  /** The GPU memory the backend will use, in MiB; 0 on CPU; null or absent when unknown (not checked). */
  vramMiB?: number | null;
}

function gib(mib: number): string {
  const value = mib / 1024;
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

/** Throws PREFLIGHT_FAILED when the manifest cannot run on this node. */
export async function checkManifestFits(
  manifest: Pick<ModelManifest, "name" | "version" | "runtime" | "vramBand">,
  options: ManifestFitOptions,
): Promise<void> {
  const ref = `${manifest.name}@${manifest.version}`;
  const backends: readonly string[] = manifest.runtime.backends;
  if (!backends.includes(options.backendKind)) {
    throw new GbtError(
      "PREFLIGHT_FAILED",
      `${ref} runs on ${backends.join(", ")}; this node's backend is ${options.backendKind}.`,
      {
        details: { ref, backends, backend: options.backendKind },
        hint: `Run the node with one of those backends (gbt setup --backend ${backends[0]}), or pull another model.`,
      },
    );
  }
  const vram = options.vramMiB;
  if (vram === null || vram === undefined) return;
  if (vram < manifest.vramBand.minMiB) {
    const has = vram === 0 ? "this node has none (it runs on CPU)" : `this node has ${gib(vram)}`;
    throw new GbtError(
      "PREFLIGHT_FAILED",
      `${ref} needs ${gib(manifest.vramBand.minMiB)} GiB VRAM, ${has}.`,
      {
        details: { ref, neededMiB: manifest.vramBand.minMiB, vramMiB: vram },
        hint: "Pull a smaller model or quantization (see its vramBand), or run it on a node with more GPU memory.",
      },
    );
  }
}
