/**
 * The model registry as a gateway extension: publishers `POST /v1/registry/models` a signed
 * manifest (signature, payload binding and document checked; name@version immutable), anyone
 * reads `GET /v1/registry/models[/:name/:version]`, and an admin approves or delists a version.
 * `registry.publishers` limits who may submit; a name belongs to its first publisher.
 * With `registry.requireApproved` on, it installs the node-link admission: nodes register and
 * serve only models with an approved manifest. See the wire contract in @gbt/protocol.
 */
import {
  GbtError,
  HttpError,
  IDEMPOTENCY_KEY_HEADER,
  MAX_MANIFEST_BYTES,
  modelNameSchema,
  modelVersionSchema,
  REGISTRY_MODELS_PATH,
  recoverSignerNative,
  registryStatuses,
  sendJson,
  toHttpError,
  verifyModelManifest,
} from "@gbt/protocol";
import { z } from "zod";
import type { GatewayExtension, GatewayRequest } from "../server/gateway-extension.js";
import { ModelRegistryStore } from "./model-registry-store.js";

/** A signed manifest is its document plus a few hundred bytes of envelope. */
const MAX_SUBMIT_BYTES = MAX_MANIFEST_BYTES + 16 * 1024;

const listQuery = z.strictObject({
  status: z.enum(registryStatuses).optional(),
  name: modelNameSchema.optional(),
});
const statusBody = z.strictObject({ reason: z.string().max(500).optional() }).nullable();

const MODEL_ROUTE = /^\/v1\/registry\/models\/([^/]+)\/([^/]+)(?:\/(approve|delist))?$/;

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

      async function route(request: GatewayRequest): Promise<string | undefined> {
        const { path, method, res } = request;
        if (path === REGISTRY_MODELS_PATH) {
          if (method === "POST") {
            const body = await request.readJson(MAX_SUBMIT_BYTES);
            const signed = await verifyModelManifest(body, {
              chainId: context.config.chainId,
              skewSeconds: context.config.skewSeconds,
              recoverSigner: recoverSignerNative,
              now: context.now,
              ...(publishers ? { allowedSigners: publishers } : {}),
            });
            const result = store.submit(signed);
            const key = request.req.headers[IDEMPOTENCY_KEY_HEADER];
            context.logger.info(
              {
                model: `${signed.payload.name}@${signed.payload.version}`,
                publisher: signed.message.publisher,
                created: result.created,
              },
              result.created ? "model manifest registered" : "model manifest resubmitted (unchanged)",
            );
            sendJson(
              res,
              result.created ? 201 : 200,
              result,
              typeof key === "string" && key.length <= 200 ? { [IDEMPOTENCY_KEY_HEADER]: key } : {},
            );
            return "registry_submit";
          }
          if (method === "GET") {
            const query = listQuery.safeParse(Object.fromEntries(request.query));
            if (!query.success) {
              const issue = query.error.issues[0];
              throw new GbtError(
                "INVALID_INPUT",
                `Query ${issue?.path.join(".") || "string"}: ${issue?.message}.`,
              );
            }
            sendJson(res, 200, {
              object: "list",
              data: store.list({
                ...(query.data.status ? { status: query.data.status } : {}),
                ...(query.data.name ? { name: query.data.name } : {}),
              }),
            });
            return "registry_list";
          }
          throw new HttpError("method_not_allowed", "Use GET or POST.", null, {
            allow: "GET, POST",
          });
        }
        const match = MODEL_ROUTE.exec(path);
        if (!match) {
          if (path.startsWith(`${REGISTRY_MODELS_PATH}/`)) {
            throw new HttpError("not_found", `No route ${method} ${path}.`);
          }
          return undefined;
        }
        const name = modelNameSchema.safeParse(safeDecode(match[1] as string));
        const version = modelVersionSchema.safeParse(safeDecode(match[2] as string));
        if (!name.success || !version.success) {
          throw new GbtError("INVALID_INPUT", "The model name or version in the path is not valid.");
        }
        const action = match[3] as "approve" | "delist" | undefined;
        if (action === undefined) {
          if (method !== "GET") {
            throw new HttpError("method_not_allowed", "Use GET.", null, {
              allow: "GET",
            });
          }
          sendJson(res, 200, store.get(name.data, version.data));
          return "registry_get";
        }
        if (method !== "POST") {
          throw new HttpError("method_not_allowed", "Use POST.", null, {
            allow: "POST",
          });
        }
        request.requireAdmin();
        const parsed = statusBody.safeParse(await request.readJson(8 * 1024));
        if (!parsed.success) throw new GbtError("INVALID_INPUT", 'The body must be {} or {"reason": "…"}.');
        const model = store.setStatus(name.data, version.data, action, parsed.data?.reason);
        context.logger.info(
          { model: `${name.data}@${version.data}`, status: model.status },
          "model status changed",
        );
        sendJson(res, 200, model);
        return `registry_${action}`;
      }

      return {
        async handle(request) {
          try {
            return await route(request);
          } catch (error) {
            if (!(error instanceof HttpError) && !(error instanceof GbtError)) {
              context.logger.error({ err: error, path: request.path }, "registry request failed");
            }
            throw toHttpError(error, "gateway", "model registry");
          }
        },
        close() {
          if (requireApproved) context.pool.setAdmission(undefined);
        },
      };
    },
  };
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return "";
  }
}
