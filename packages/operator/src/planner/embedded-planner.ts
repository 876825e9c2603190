/**
 * A planner on a GGUF model in this process (node-llama-cpp), with no server at all. The model's
 * answer is constrained by a JSON-schema grammar built from the allowlist: `{say, jobs: [{type,
 * params, why}]}` where `type` is an enum of the published types and each type's params follow its
 * schema. The grammar only shapes the text; the agent's schemas still judge every proposal (a
 * grammar admits integers like 909e79419, bounded strings can still hold metacharacters).
 *
 * Grammar conventions: node-llama-cpp makes every object property required, so an optional
 * parameter is `oneOf [its schema, null]` and a null is read as "not given".
 */
import { GbtError, type PublishedAllowlist } from "@gbt/protocol";
import type { GbnfJsonSchema, Llama, LlamaContext, LlamaModel } from "node-llama-cpp";
import { renderFacts } from "../facts.js";
import type { RawProposal } from "../proposal.js";
import type { Planner, PlannerReply, PlanningContext } from "./planner.js";

export interface EmbeddedPlannerOptions {
  /** Path to the GGUF file. */
  modelPath: string;
  /** Shown in the status bar (default: the file name). */
  modelName?: string;
  /** llama.cpp threads (default 1: more threads than cores makes CPU generation far slower). */
  threads?: number;
  /** Tokens of the answer (default 384). */
  maxTokens?: number;
  /** Sampling seed, for reproducible plans. */
  seed?: number;
}

const MAX_JOBS = 3;
const MAX_STRING = 64;

/** A JSON Schema from the allowlist reduced to what node-llama-cpp's grammar accepts. */
export function grammarSchemaOf(schema: Record<string, unknown>, depth = 0): GbnfJsonSchema {
  if (depth > 6) return { type: "null" };
  if (Array.isArray(schema.enum)) return { enum: schema.enum as (string | number | boolean | null)[] };
  if ("const" in schema) return { const: schema.const as string | number | boolean | null };
  const variants = (schema.anyOf ?? schema.oneOf) as Record<string, unknown>[] | undefined;
  if (Array.isArray(variants)) return { oneOf: variants.map((v) => grammarSchemaOf(v, depth + 1)) };
  switch (schema.type) {
    case "string":
      return { type: "string", maxLength: Math.min(Number(schema.maxLength ?? MAX_STRING), MAX_STRING) };
    case "integer":
    case "number":
    case "boolean":
    case "null":
      return { type: schema.type };
    case "object": {
      const properties = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
      const required = new Set(Array.isArray(schema.required) ? (schema.required as string[]) : []);
      const out: Record<string, GbnfJsonSchema> = {};
      for (const [name, property] of Object.entries(properties)) {
        const inner = grammarSchemaOf(property, depth + 1);
        out[name] = required.has(name) ? inner : { oneOf: [inner, { type: "null" }] };
      }
      return { type: "object", properties: out };
    }
    default:
      return { type: "string", maxLength: MAX_STRING };
  }
}

/** The grammar of a whole answer. */
export function answerSchemaOf(allowlist: PublishedAllowlist): GbnfJsonSchema {
  const jobs = allowlist.types.map(
    (entry): GbnfJsonSchema => ({
      type: "object",
      properties: {
        type: { const: entry.type },
        params: grammarSchemaOf(entry.paramsSchema),
        why: { type: "string", maxLength: 100 },
      },
    }),
  );
  return {
    type: "object",
    properties: {
      say: { type: "string", maxLength: 160 },
      jobs: {
        type: "array",
        maxItems: MAX_JOBS,
        items: jobs.length > 0 ? { oneOf: jobs } : { type: "null" },
      },
    },
  };
}

/** `{a: 1, b: null}` → `{a: 1}`: the grammar's spelling of "not given". */
function withoutNulls(value: unknown): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null));
}

/** Reads the model's JSON answer into a reply; anything off-shape is reported, not repaired. */
export function replyFromAnswer(text: string): PlannerReply {
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    return {
      say: "",
      proposals: [],
      malformed: [{ code: "INVALID_INPUT", message: "the model's answer is not JSON" }],
    };
  }
  if (answer === null || typeof answer !== "object" || Array.isArray(answer)) {
    return {
      say: "",
      proposals: [],
      malformed: [{ code: "INVALID_INPUT", message: "the model's answer is not an object" }],
    };
  }
  const { say, jobs } = answer as { say?: unknown; jobs?: unknown };
  const proposals: RawProposal[] = [];
  for (const job of Array.isArray(jobs) ? jobs.slice(0, MAX_JOBS) : []) {
    if (job === null || typeof job !== "object") continue;
    const { type, params, why, ...extra } = job as Record<string, unknown>;
    proposals.push({
      type: String(type ?? ""),
      params: withoutNulls(params ?? {}),
      why,
      ...(Object.keys(extra).length > 0 ? { extra } : {}),
    });
  }
  return { say: typeof say === "string" ? say : "", proposals };
}

/**
 * A short system prompt: small local models have small contexts, and the grammar already carries
 * the job types and their parameters.
 */
export function compactPrompt(context: PlanningContext): string {
  const types = context.allowlist.types.map((t) => `${t.type}: ${t.description}`).join("\n");
  const facts = context.facts.length > 0 ? `\nFacts:\n${renderFacts(context.facts)}` : "";
  return `You are the gbt Operator for node ${context.node}. Propose jobs the admin will approve; answer as JSON {"say", "jobs"}. If no job fits, say so and propose none.\nJob types:\n${types}${facts}`;
}

type NodeLlamaCpp = typeof import("node-llama-cpp");

export function createEmbeddedPlanner(options: EmbeddedPlannerOptions): Planner {
  let loaded:
    | Promise<{ module: NodeLlamaCpp; llama: Llama; model: LlamaModel; context: LlamaContext }>
    | undefined;
  const name = options.modelName ?? options.modelPath.split(/[\\/]/).pop() ?? options.modelPath;

  function load() {
    loaded ??= (async () => {
      const module = await import("node-llama-cpp");
      // One Llama per process, never disposed (disposing frees llama.cpp's process-wide backend).
      const llama = await module.getLlama({
        gpu: false,
        build: "never",
        maxThreads: 0,
        skipDownload: true,
        progressLogs: false,
      });
      let model: LlamaModel;
      try {
        model = await llama.loadModel({ modelPath: options.modelPath, gpuLayers: 0 });
      } catch (cause) {
        throw new GbtError("MODEL_NOT_FOUND", `Cannot load the planning model ${options.modelPath}.`, {
          hint: "Give a readable GGUF file with --planner-model, or use --planner offline.",
          cause,
        });
      }
      const context = await model.createContext({
        contextSize: Math.min(model.trainContextSize || 2048, 4096),
        threads: options.threads ?? 1,
      });
      return { module, llama, model, context };
    })();
    loaded.catch(() => {
      loaded = undefined;
    });
    return loaded;
  }

  return {
    kind: "llm",
    label: `embedded ${name}`,
    endpoint: options.modelPath,
    async plan(context): Promise<PlannerReply> {
      const { module, llama, context: llamaContext } = await load();
      const grammar = await llama.createGrammarForJsonSchema(answerSchemaOf(context.allowlist) as never);
      const sequence = llamaContext.getSequence();
      const session = new module.LlamaChatSession({
        contextSequence: sequence,
        systemPrompt: compactPrompt(context),
      });
      const prompt = [
        ...context.history.slice(-4).map((m) => `${m.role}: ${m.content}`),
        context.message,
      ].join("\n");
      try {
        const text = await session
          .prompt(prompt, {
            grammar,
            maxTokens: options.maxTokens ?? 1024,
            temperature: 0,
            ...(options.seed === undefined ? {} : { seed: options.seed }),
            ...(context.signal ? { signal: context.signal } : {}),
          })
          .catch((cause: unknown) => {
            throw new GbtError(
              "CONTEXT_LENGTH_EXCEEDED",
              `The planning model's context is too small for this conversation: ${(cause as Error).message}`,
              {
                hint: "Use a model with a larger context (--planner-model), or --planner offline.",
                cause,
              },
            );
          });
        return replyFromAnswer(text);
      } finally {
        session.dispose({ disposeSequence: true });
      }
    },
    async close() {
      const current = await loaded?.catch(() => undefined);
      loaded = undefined;
      await current?.context.dispose();
      await current?.model.dispose();
    },
  };
}
