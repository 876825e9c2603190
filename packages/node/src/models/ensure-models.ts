/**
 * `gbt serve --models a,b`: pulls each source that is not in the models dir yet (one after the
 * other, so progress stays readable and the disk check sees the previous file), and returns what
 * to serve: each model's id and file.
 */
import { type PullIntoNodeOptions, pullIntoNode } from "./pull-into-node.js";
import { type PullModelOptions, type PullModelResult, pullModel } from "./pull-model.js";

export interface EnsuredModel {
  id: string;
  /** The GGUF file; null for an Ollama model (Ollama keeps its own store). */
  path: string | null;
  /** Whether this call downloaded it. */
  pulled: boolean;
  result: PullModelResult;
}

/** Pulls what is missing of `sources` (see pullModel for each source's syntax); `options.as` is ignored. */
export async function ensureModels(
  sources: readonly string[],
  options: Omit<PullModelOptions, "as" | "sha256">,
): Promise<EnsuredModel[]> {
  const ensured: EnsuredModel[] = [];
  for (const source of sources) {
    const result = await pullModel(source, options);
    ensured.push({ id: result.id, path: result.path, pulled: !result.alreadyPresent, result });
  }
  return ensured;
}

/**
 * ensureModels with this node's own settings (see pullIntoNode: backend kind, chain and gateway
 * from the config, the registry of `gatewayUrl` or the config's gateway): what `gbt serve --models`
 * calls.
 */
export async function ensureNodeModels(
  sources: readonly string[],
  options: Omit<PullIntoNodeOptions, "as" | "sha256">,
): Promise<EnsuredModel[]> {
  const ensured: EnsuredModel[] = [];
  for (const source of sources) {
    const result = await pullIntoNode(source, options);
    ensured.push({ id: result.id, path: result.path, pulled: !result.alreadyPresent, result });
  }
  return ensured;
}
