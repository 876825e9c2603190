/**
 * The model and service handlers of the node agent against a running node: model.pull,
 * model.remove, model.switch and service.restart. On the embedded backend nothing comes from the network: a
 * pull serves a generated test model (written on demand) or a GGUF file already in the models dir,
 * never a path outside it. Other backends pull through the backend itself when it can.
 */
import { access, rm } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { JobHandlers } from "@gbt/agent";
import { GbtError } from "@gbt/protocol";
import type { GbtPaths } from "@gbt/store";
import type { Backend } from "../backends/types.js";
import type { RunningNode } from "../serve.js";
import { generateTestModel } from "../test-model/test-model.js";

/** The generated test models a pull may create, by id. */
const pullableTestModels: Record<string, "tiny" | "small"> = {
  "gbt-test-tiny": "tiny",
  "gbt-test-small": "small",
};

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
  >
>;

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The model handlers of the node that `running` returns (it throws while the node is not started). */
export function modelJobHandlers(paths: GbtPaths, running: () => RunningNode): ModelJobHandlers {
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

  async function checkPullSource(model: string): Promise<void> {
    const { backend } = running();
    if (!embedded(backend)) {
      if (!backend.pullModel) {
        throw new GbtError("PREFLIGHT_FAILED", `model.pull is not supported on the ${backend.kind} backend.`);
      }
      return;
    }
    const file = modelFile(model);
    if (pullableTestModels[model] === undefined && !(await exists(file))) {
      throw new GbtError("PREFLIGHT_FAILED", `No model ${model}: ${file} does not exist.`, {
        details: { model, path: file },
        hint: `Copy the GGUF file to ${file}, or pull one of ${Object.keys(pullableTestModels).join(", ")}.`,
      });
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
    async pullModel(model) {
      await checkPullSource(model);
      const { backend } = running();
      if (!embedded(backend)) {
        await backend.pullModel?.(model);
        await backend.loadModel?.(model);
        return { createdFile: false };
      }
      const file = modelFile(model);
      const shape = pullableTestModels[model];
      const createdFile = shape !== undefined && !(await exists(file));
      if (createdFile) await generateTestModel(file, { shape });
      try {
        backend.addModelFile?.(model, file);
        await backend.loadModel?.(model);
      } catch (error) {
        await forget(backend, model).catch(() => undefined);
        if (createdFile) await rm(file, { force: true });
        throw error;
      }
      return { createdFile };
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
