/**
 * The job types a node accepts, version ALLOWLIST_VERSION of the allowlist, as they travel: each
 * type's name, risk, description and strict, bounded parameter schema. Issuers (the CLI, the
 * Operator) build and check jobs with these, and the agent verifies received jobs with the same
 * ones. What a type may still not do (its policy) and how it is carried out stay in @gbt/agent.
 */
import { z } from "zod";
import { MODEL_SWITCH_PENALTY, modelSwitchCost } from "../../pool-rules.js";
import { address } from "../../primitives.js";
import { modelName, operatorNote } from "./safe-strings.js";

/** Bumped whenever a type is added, removed, or its parameters change meaning. */
export const ALLOWLIST_VERSION = 1;

/** One job type as the wire knows it. */
export interface JobTypeSchema {
  type: string;
  /** `read` types never change the node; `change` types do and need executors with rollback. */
  risk: "read" | "change";
  /** Strict schema of the job's parameters (the signed payload). */
  params: z.ZodType;
  description: string;
}

/** The settings `config.set` may change, each with the values it accepts. */
export const configSettings = {
  "backend.threads": z.number().int().min(1).max(256),
  "backend.capacity": z.number().int().min(1).max(256),
  "backend.contextSize": z.number().int().min(64).max(1_048_576),
  "server.port": z.number().int().min(1024).max(65_535),
  "node.mode": z.enum(["local", "managed"]),
} as const;
export type ConfigKey = keyof typeof configSettings;
const configKeys = Object.keys(configSettings) as [ConfigKey, ...ConfigKey[]];

const configSetParams = z
  .strictObject({
    key: z.enum(configKeys),
    value: z.union([z.number(), z.string().max(64)]),
  })
  .superRefine((params, ctx) => {
    const parsed = configSettings[params.key].safeParse(params.value);
    if (!parsed.success) {
      ctx.addIssue({
        code: "custom",
        path: ["value"],
        message: `invalid value for ${params.key}: ${parsed.error.issues[0]?.message ?? "rejected"}`,
      });
    }
  });

/** The parameters of owner.add and owner.remove. */
export const ownerParams = z.strictObject({ address });

/** Every job type of this allowlist version, in the order the allowlist lists them. */
export const jobTypeSchemas = [
  {
    type: "status.read",
    risk: "read",
    params: z.strictObject({}),
    description: "Report the node's status: backend, models, load, version.",
  },
  {
    type: "model.pull",
    risk: "change",
    params: z.strictObject({
      model: modelName,
      /** Install as this id (default: the source's own: a registry name, a file name without .gguf). */
      as: modelName.optional(),
      /** The file's sha256, required when `model` is a bare https:// URL. */
      sha256: z
        .string()
        .regex(/^[0-9a-f]{64}$/, "must be 64 lower-case hex characters")
        .optional(),
    }),
    description:
      "Download a model into the backend's store: a registry reference NAME@VERSION, hf:OWNER/REPO/FILE.gguf, an https:// URL with sha256 (where the node's policy allows URLs), an Ollama name on Ollama; verified before it is installed.",
  },
  {
    type: "model.remove",
    risk: "change",
    params: z.strictObject({ model: modelName }),
    description: "Delete a model from the backend's store.",
  },
  {
    type: "model.switch",
    risk: "change",
    params: z.strictObject({ model: modelName }),
    description: `Serve another (already pulled) model instead of the current one. In a pool this costs: payout ×${MODEL_SWITCH_PENALTY.startMultiplier}, recovering over ${MODEL_SWITCH_PENALTY.recoveryHours} h (≈${modelSwitchCost().lostEarningsHours} h of earnings).`,
  },
  {
    type: "service.restart",
    risk: "change",
    params: z.strictObject({ service: z.enum(["backend", "server"]) }),
    description: "Restart the inference backend or the node's server.",
  },
  {
    type: "node.drain",
    risk: "change",
    params: z.strictObject({ reason: operatorNote(200).optional() }),
    description: "Stop taking new requests; requests in flight finish.",
  },
  {
    type: "node.resume",
    risk: "change",
    params: z.strictObject({}),
    description: "Take requests again after a drain.",
  },
  {
    type: "benchmark.run",
    risk: "change",
    params: z.strictObject({
      mode: z.enum(["micro", "serve"]).optional(),
      genTokens: z.number().int().min(1).max(1024).optional(),
      promptTokens: z.number().int().min(1).max(8192).optional(),
    }),
    description: "Run a benchmark and sign its record.",
  },
  {
    type: "config.set",
    risk: "change",
    params: configSetParams,
    description: `Change one allowlisted setting (${configKeys.join(", ")}).`,
  },
  {
    type: "logs.tail",
    risk: "read",
    params: z.strictObject({ lines: z.number().int().min(1).max(500).optional() }),
    description: "Return the last lines of the node's log (at most 500; secrets redacted).",
  },
  {
    type: "owner.add",
    risk: "change",
    params: ownerParams,
    description: "Allow another address to sign jobs for this node.",
  },
  {
    type: "owner.remove",
    risk: "change",
    params: ownerParams,
    description: "Stop an address from signing jobs for this node; never the last owner.",
  },
] as const satisfies readonly JobTypeSchema[];
