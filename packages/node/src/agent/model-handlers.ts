/**
 * The model and service handlers of the node agent against a running node: model.pull,
 * model.remove, model.switch and service.restart. A pull takes any source of models/pull-model.ts
 * (a registry reference from the node's gateway, hf:…, an https URL with its sha256 where the
 * owner's policy allows URLs, a generated test model, an Ollama name on Ollama) or the id of a
 * GGUF file already in the models dir; every file is verified before it is served and never lands
 * outside the models dir. Before a pull of a registry model, and before a switch to one, its
 * manifest's backends and VRAM band are checked against this node.
 */
import { access, readFile, rm } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { JobHandlers } from "@gbt/agent";
import { createGatewayClient, GbtError, verifyModelManifest } from "@gbt/protocol";
import type { GbtPaths } from "@gbt/store";
import type { Backend } from "../backends/types.js";
import { loadConfig } from "../config.js";
import { checkManifestFits } from "../models/manifest-fit.js";
import { pullableTestModels } from "../models/model-source.js";
import {
  manifestSidecarPath,
  type PullModelOptions,
  type PullPolicy,
  type PullProgressEvent,
  planPull,
  pullModel as pullFromSource,
  type RegistryReader,
} from "../models/pull-model.js";
import { agentPullPolicy, pullPolicyOf } from "../models/pull-policy.js";
import type { RunningNode } from "../serve.js";

/** How long a server restart waits for requests in flight before taking requests again. */
const SERVER_RESTART_DRAIN_MS = 5_000;

type ModelJobHandlers = Required<
  Pick<
    JobHandlers,
    | "listModels"
    | "checkPullSource"
    | "pullModel"
    | "unloadModel"
    | "deleteModelFile"
    | "restartService"
    | "backendHealth"
    | "hasModel"
    | "checkModelFits"
  >
>;

type PullJobOptions = NonNullable<Parameters<NonNullable<JobHandlers["pullModel"]>>[1]>;

/** What the model handlers may be given besides the node; each has a default from the node's config. */
export interface ModelJobHandlerOptions {
  /** The GPU memory the backend uses, in MiB (0: CPU only; null: unknown). Default: unknown, VRAM bands are not checked. */
  vramMiB?: () => Promise<number | null>;
  /** The registry; default: a client of the config's gateway.url. */
  registry?: RegistryReader;
  /** The policy signed pulls run under; default: agentPullPolicy of the config's agent.pullPolicy. */
  pullPolicy?: PullPolicy;
  /** Environment (GBT_HF_ENDPOINT, HF_TOKEN). */
  env?: NodeJS.ProcessEnv;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The model handlers of the node that `running` returns (it throws while the node is not started). */
export function modelJobHandlers(
  paths: GbtPaths,
  running: () => RunningNode,
  options: ModelJobHandlerOptions = {},
): ModelJobHandlers {
  const modelsDir = resolve(paths.modelsDir);

  /** `<modelsDir>/<model>.gguf`, refusing any name that would leave the models dir. */
  function modelFile(model: string): string {
    const file = resolve(modelsDir, `${model}.gguf`);
    if (dirname(file) !== modelsDir) {
      throw new GbtError("PREFLIGHT_FAILED", `Model name ${JSON.stringify(model)} leaves the models dir.`, {
        details: { model, modelsDir },
        hint: "Name a model by its id: a file <id>.gguf in the models dir, or gbt-test-tiny / gbt-test-small.",
      });
    }
    return file;
  }

  function embedded(backend: Backend): boolean {
    return backend.kind === "embedded" && backend.addModelFile !== undefined;
  }

  /** The node's raw config document (the pull policy may be a key its schema does not know yet). */
  async function rawConfig(): Promise<unknown> {
    return JSON.parse(await readFile(paths.configFile, "utf8")) as unknown;
  }

  async function pullOptions(backend: Backend, job: PullJobOptions): Promise<PullModelOptions> {
    const config = await loadConfig(paths.configFile);
    const policy =
      options.pullPolicy ?? agentPullPolicy(pullPolicyOf(await rawConfig().catch(() => undefined)));
    const registry =
      options.registry ?? (config.gateway ? createGatewayClient({ url: config.gateway.url }) : undefined);
    return {
      modelsDir,
      backendKind: backend.kind,
      policy,
      chainId: config.node.chainId,
      ...(registry ? { registry } : {}),
      ...(job.as !== undefined ? { as: job.as } : {}),
      ...(job.sha256 !== undefined ? { sha256: job.sha256 } : {}),
      ...(job.onProgress
        ? {
            onProgress: (progress: PullProgressEvent) =>
              job.onProgress?.({
                phase: progress.phase,
                bytes: progress.bytes,
                totalBytes: progress.totalBytes,
              }),
          }
        : {}),
      ...(options.vramMiB ? { vramMiB: options.vramMiB } : {}),
      ...(options.env ? { env: options.env } : {}),
      ...(backend.pullModel
        ? {
            ollamaPull: (name: string, signal?: AbortSignal) =>
              backend.pullModel?.(name, undefined, signal) ?? Promise.resolve(),
          }
        : {}),
    };
  }

  /** A model already in the models dir, pulled by its id (the pre-source form of model.pull). */
  async function isLocalId(model: string, job: PullJobOptions): Promise<boolean> {
    if (job.as !== undefined || job.sha256 !== undefined) return false;
    if (!/^[A-Za-z0-9][A-Za-z0-9._:+-]*$/.test(model)) return false;
    return exists(modelFile(model));
  }

  async function checkPullSource(model: string, job: PullJobOptions = {}): Promise<{ id: string }> {
    const { backend } = running();
    if (!embedded(backend)) {
      if (!backend.pullModel) {
        throw new GbtError("PREFLIGHT_FAILED", `model.pull is not supported on the ${backend.kind} backend.`);
      }
      const plan = planPull(model, { ...(await pullOptions(backend, job)), backendKind: backend.kind });
      if (plan.source.kind !== "ollama") {
        throw new GbtError(
          "PREFLIGHT_FAILED",
          `On the ${backend.kind} backend model.pull takes the backend's own model names.`,
          {
            details: { model, kind: plan.source.kind },
          },
        );
      }
      return { id: plan.id };
    }
    if (await isLocalId(model, job)) return { id: model };
    try {
      const plan = planPull(model, await pullOptions(backend, job));
      return { id: plan.id };
    } catch (error) {
      if ((error as GbtError).code === "USAGE") {
        throw new GbtError(
          "PREFLIGHT_FAILED",
          `No model ${model}: not a file in the models dir, and ${(error as GbtError).message}`,
          {
            details: { model, path: modelFile(model) },
            hint: `Pull NAME@VERSION from the registry, hf:OWNER/REPO/FILE.gguf, or one of ${Object.keys(pullableTestModels).join(", ")}; or copy the GGUF file to ${modelFile(model)}.`,
            cause: error,
          },
        );
      }
      throw error;
    }
  }

  async function forget(backend: Backend, model: string): Promise<void> {
    if (backend.forgetModel) await backend.forgetModel(model);
    else await backend.unloadModel?.(model);
  }

  return {
    async listModels() {
      return (await running().backend.listModels()).map((model) => model.id);
    },
    checkPullSource,
    async pullModel(model, job = {}) {
      const { id } = await checkPullSource(model, job);
      const { backend } = running();
      if (!embedded(backend)) {
        await pullFromSource(model, await pullOptions(backend, job));
        await backend.loadModel?.(id);
        return { createdFile: false, id };
      }
      let file = modelFile(id);
      let createdFile = false;
      if (!(await isLocalId(model, job))) {
        const pulled = await pullFromSource(model, await pullOptions(backend, job));
        createdFile = !pulled.alreadyPresent;
        file = pulled.path ?? file;
      }
      try {
        backend.addModelFile?.(id, file);
        await backend.loadModel?.(id);
      } catch (error) {
        await forget(backend, id).catch(() => undefined);
        if (createdFile) {
          await rm(file, { force: true });
          await rm(manifestSidecarPath(modelsDir, id), { force: true });
        }
        throw error;
      }
      return { createdFile, id };
    },
    async checkModelFits(model) {
      const { backend } = running();
      let signed: unknown;
      try {
        signed = JSON.parse(await readFile(manifestSidecarPath(modelsDir, model), "utf8"));
      } catch {
        return; // Not a registry model: no manifest to check against.
      }
      const config = await loadConfig(paths.configFile);
      const manifest = (await verifyModelManifest(signed, { chainId: config.node.chainId })).payload;
      await checkManifestFits(manifest, {
        backendKind: backend.kind,
        ...(options.vramMiB ? { vramMiB: await options.vramMiB() } : {}),
      });
    },
    async unloadModel(model) {
      await forget(running().backend, model);
    },
    async deleteModelFile(model) {
      const { backend } = running();
      if (!embedded(backend)) {
        if (!backend.removeModel) return false;
        await backend.removeModel(model);
        return true;
      }
      const file = modelFile(model);
      if (!(await exists(file))) return false;
      await rm(file);
      await rm(manifestSidecarPath(modelsDir, model), { force: true }).catch(() => undefined);
      return true;
    },
    async restartService(service) {
      const node = running();
      if (service === "server") {
        // A full re-listen would drop the connection answering this job: the server's intake is
        // cycled instead (drained until requests in flight finish, then open again).
        const wasDraining = node.server.isDraining();
        node.server.setDraining(true);
        const deadline = Date.now() + SERVER_RESTART_DRAIN_MS;
        while (node.server.inFlight() > 0 && Date.now() < deadline) {
          await new Promise((done) => setTimeout(done, 50));
        }
        if (!wasDraining) node.server.setDraining(false);
        return;
      }
      const { backend } = node;
      const loaded = (await backend.listModels()).filter((model) => model.details?.loaded === true);
      for (const model of loaded) {
        await backend.unloadModel?.(model.id);
        await backend.loadModel?.(model.id);
      }
    },
    async hasModel(model) {
      const { backend } = running();
      const served = (await backend.listModels()).some((entry) => entry.id === model);
      if (served || !embedded(backend)) return served;
      return exists(modelFile(model));
    },
    async backendHealth() {
      const health = await running().backend.health();
      return { ok: health.ok, ...(health.detail !== undefined ? { detail: health.detail } : {}) };
    },
  };
}
