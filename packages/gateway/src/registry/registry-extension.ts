/**
 * The model registry as a gateway extension: publishers `POST /v1/registry/models` a signed
 * manifest (signature, payload binding and document checked; name@version immutable), anyone
 * reads `GET /v1/registry/models[/:name/:version]`, and an admin approves or delists a version.
 * `registry.publishers` limits who may submit; a name belongs to its first publisher.
 * With `registry.requireApproved` on, it installs the node-link admission: nodes register and
 * serve only models with an approved manifest. See the wire contract in @gbt/protocol.
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
import { z } from "zod";
import { readJson } from "../http/body.js";
import { errorScope, methodNotAllowed } from "../http/errors.js";
import { named } from "../http/gateway-app.js";
import type { GatewayEnv } from "../http/gateway-env.js";
import { parseInput, queryProblem } from "../http/validate.js";
import type { GatewayExtension } from "../server/gateway-extension.js";
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

export interface ModelRegistryExtensionOptions {
  /** Overrides the config's `registry.requireApproved`. */
  requireApproved?: boolean;
}

export function createModelRegistryExtension(options: ModelRegistryExtensionOptions = {}): GatewayExtension {
  return {
    name: "model-registry",
    start(context) {
      const store = new ModelRegistryStore(context.db, context.now);
      const requireApproved = options.requireApproved ?? context.config.registry?.requireApproved ?? false;
      if (requireApproved) context.pool.setAdmission((model) => store.isApproved(model));
      const publishers = context.config.registry?.publishers;

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
            chainId: context.config.chainId,
            skewSeconds: context.config.skewSeconds,
            recoverSigner: recoverSignerNative,
            now: context.now,
            ...(publishers ? { allowedSigners: publishers } : {}),
          });
          const result = store.submit(signed);
          const key = c.req.header(IDEMPOTENCY_KEY_HEADER);
          context.logger.info(
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
        .post(STATUS_PATH, context.admin, async (c) => {
          const model = modelOf(c.req.param());
          const action = c.req.param("action") as "approve" | "delist";
          c.set("route", `registry_${action}`);
          const body = parseInput(
            statusBody,
            await readJson(c, 8 * 1024),
            () => 'The body must be {} or {"reason": "…"}.',
          );
          const changed = store.setStatus(model.name, model.version, action, body?.reason);
          context.logger.info(
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
          if (requireApproved) context.pool.setAdmission(undefined);
        },
      };
    },
  };
}
