/**
 * The model registry, a feature of the gateway: publishers `POST /v1/registry/models` a signed
 * manifest (signature, payload binding and document checked; name@version immutable), anyone
 * reads `GET /v1/registry/models[/:name/:version]`, and an admin approves or delists a version.
 * `registry.publishers` limits who may submit; a name belongs to its first publisher.
 * With `registry.requireApproved` on, it sets the pool's admission: nodes register and serve
 * only models with an approved manifest. See the wire contract in @gbt/protocol.
 */
import {
  IDEMPOTENCY_KEY_HEADER,
  MAX_MANIFEST_BYTES,
  modelNameSchema,
  modelVersionSchema,
  REGISTRY_MODELS_PATH,
  recoverSignerNative,
  registryStatuses,
  verifyModelManifest,
} from "@gbt/protocol";
import { Hono, type MiddlewareHandler } from "hono";
import type { Logger } from "pino";
import { z } from "zod";
import type { GatewayConfig } from "../gateway-config.js";
import type { GatewayDatabase } from "../gateway-database.js";
import type { FeatureStarter } from "../gateway-feature.js";
import { readJson } from "../http/body.js";
import { errorScope, methodNotAllowed } from "../http/errors.js";
import { named } from "../http/gateway-app.js";
import type { GatewayEnv } from "../http/gateway-env.js";
import { parseInput, queryProblem } from "../http/validate.js";
import type { InstancePool } from "../pool/instance-pool.js";
import { ModelRegistryStore } from "./model-registry-store.js";

/** A signed manifest is its document plus a few hundred bytes of envelope. */
const MAX_SUBMIT_BYTES = MAX_MANIFEST_BYTES + 16 * 1024;

const listQuery = z.strictObject({
  status: z.enum(registryStatuses).optional(),
  name: modelNameSchema.optional(),
});
const statusBody = z.strictObject({ reason: z.string().max(500).optional() }).nullable();
const modelParams = z.object({ name: modelNameSchema, version: modelVersionSchema });

const MODEL_PATH = `${REGISTRY_MODELS_PATH}/:name/:version`;
const STATUS_PATH = `${MODEL_PATH}/:action{approve|delist}`;

/** What the registry uses of the gateway. */
export interface ModelRegistryPorts {
  /** The config's `registry` section. */
  registry: GatewayConfig["registry"];
  chainId: number;
  skewSeconds: number;
  /** Holds the registry's tables. */
  db: GatewayDatabase;
  /** Where "approved only" is enforced: the pool's admission of the models nodes serve. */
  pool: Pick<InstancePool, "setAdmission">;
  admin: MiddlewareHandler<GatewayEnv>;
  logger: Logger;
  now: () => number;
}

export interface ModelRegistryOptions {
  /** Overrides the config's `registry.requireApproved`. */
  requireApproved?: boolean;
}

export type ModelRegistry = FeatureStarter<ModelRegistryPorts>;

export function createModelRegistry(options: ModelRegistryOptions = {}): ModelRegistry {
  return {
    name: "model-registry",
    start(ports) {
      const store = new ModelRegistryStore(ports.db, ports.now);
      const requireApproved = options.requireApproved ?? ports.registry?.requireApproved ?? false;
      if (requireApproved) ports.pool.setAdmission((model) => store.isApproved(model));
      const publishers = ports.registry?.publishers;

      const modelOf = (params: { name: string; version: string }) =>
        parseInput(modelParams, params, () => "The model name or version in the path is not valid.");
      const validModel: MiddlewareHandler<GatewayEnv> = async (c, next) => {
        modelOf(c.req.param() as { name: string; version: string });
        await next();
      };
      const routes = new Hono<GatewayEnv>()
        .use(`${REGISTRY_MODELS_PATH}/*`, errorScope("gateway", "model registry"))
        // A bad name or version is a 400 whatever the method or the token.
        .use(MODEL_PATH, validModel)
        .use(STATUS_PATH, validModel)
        .post(REGISTRY_MODELS_PATH, named("registry_submit"), async (c) => {
          const body = await readJson(c, MAX_SUBMIT_BYTES);
          const signed = await verifyModelManifest(body, {
            chainId: ports.chainId,
            skewSeconds: ports.skewSeconds,
            recoverSigner: recoverSignerNative,
            now: ports.now,
            ...(publishers ? { allowedSigners: publishers } : {}),
          });
          const result = store.submit(signed);
          const key = c.req.header(IDEMPOTENCY_KEY_HEADER);
          ports.logger.info(
            {
              model: `${signed.payload.name}@${signed.payload.version}`,
              publisher: signed.message.publisher,
              created: result.created,
            },
            result.created ? "model manifest registered" : "model manifest resubmitted (unchanged)",
          );
          return c.json(
            result,
            result.created ? 201 : 200,
            key !== undefined && key.length <= 200 ? { [IDEMPOTENCY_KEY_HEADER]: key } : {},
          );
        })
        .get(REGISTRY_MODELS_PATH, named("registry_list"), (c) => {
          const query = parseInput(listQuery, c.req.query(), queryProblem);
          return c.json({
            object: "list",
            data: store.list({
              ...(query.status ? { status: query.status } : {}),
              ...(query.name ? { name: query.name } : {}),
            }),
          });
        })
        .all(REGISTRY_MODELS_PATH, () => {
          throw methodNotAllowed("GET, POST");
        })
        .get(MODEL_PATH, named("registry_get"), (c) => {
          const model = modelOf(c.req.param());
          return c.json(store.get(model.name, model.version));
        })
        .all(MODEL_PATH, () => {
          throw methodNotAllowed("GET");
        })
        .post(STATUS_PATH, ports.admin, async (c) => {
          const model = modelOf(c.req.param());
          const action = c.req.param("action") as "approve" | "delist";
          c.set("route", `registry_${action}`);
          const body = parseInput(
            statusBody,
            await readJson(c, 8 * 1024),
            () => 'The body must be {} or {"reason": "…"}.',
          );
          const changed = store.setStatus(model.name, model.version, action, body?.reason);
          ports.logger.info(
            { model: `${model.name}@${model.version}`, status: changed.status },
            "model status changed",
          );
          return c.json(changed);
        })
        .all(STATUS_PATH, () => {
          throw methodNotAllowed("POST");
        });

      return {
        routes,
        close() {
          if (requireApproved) ports.pool.setAdmission(undefined);
        },
      };
    },
  };
}
