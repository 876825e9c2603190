/**
 * Model manifests: the provenance a publisher signs for a model version (artifacts with their
 * sha256 and size, license, runtime profile, VRAM band, context window, intended use). The
 * document is JSON or YAML; its canonical hash (keccak256 of canonical JSON, the same binding every
 * signed payload uses) is the `manifestHash` of an EIP-712 `ModelManifest`, so the signed envelope
 * is an ordinary {@link SignedObject} whose payload is the document.
 *
 * Two shapes: a *draft* (what a publisher writes; sha256, size, publisher and createdAt may be
 * missing and are filled in by `gbt model publish`) and a *complete* manifest (what is signed and
 * registered: every field present). Parse errors list every problem with its JSON path.
 */
import type { LocalAccount } from "viem";
import { parseDocument } from "yaml";
import { z } from "zod";
import { hashPayload } from "./canonical-json.js";
import { GbtError } from "./errors.js";
import { address, boundedText, hasControlCharacters } from "./primitives.js";
import { type SignedObject, signObject, type VerifyObjectOptions, verifyObject } from "./signed-object.js";

/** Largest manifest document accepted (file, HTTP body payload). */
export const MAX_MANIFEST_BYTES = 256 * 1024;
export const MODEL_MANIFEST_SCHEMA_VERSION = 1;

/** Model names: no `@` or `/`, so `name@version` and `/models/:name/:version` stay unambiguous. */
export const modelNameSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:-]*$/,
    "must start with a letter or digit, then letters, digits and . _ : -",
  );

export const modelVersionSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9.+_-]*$/,
    "must start with a letter or digit, then letters, digits and . + _ -",
  );

const sha256Hex = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, "must be 64 hex characters (a sha256 digest, no prefix)")
  .transform((value) => value.toLowerCase());

/**
 * A path relative to the manifest's directory: forward slashes, no `..` segment, not absolute,
 * so a manifest can never point the hasher (or a node) outside its own tree.
 */
export const artifactPathSchema = z
  .string()
  .min(1)
  .max(1024)
  .refine((value) => !hasControlCharacters(value), { message: "must not contain control characters" })
  .refine((value) => !value.startsWith("/") && !/^[A-Za-z]:/.test(value), {
    message: "must be relative to the manifest's directory, not absolute",
  })
  .refine((value) => !value.includes("\\"), { message: "must use forward slashes" })
  .refine((value) => value.split("/").every((segment) => segment !== ".."), {
    message: "must not contain '..' (paths stay inside the manifest's directory)",
  });

const artifactUriSchema = z
  .string()
  .max(2048)
  .regex(
    /^(https|http|s3|gs|hf|oci|ipfs):\/\/[^\s]+$/,
    "must be an https, http, s3, gs, hf, oci or ipfs URI",
  );

const RFC3339_SECONDS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const createdAtSchema = z
  .string()
  .regex(RFC3339_SECONDS, "must be a UTC time with seconds, like 2026-01-31T12:00:00Z")
  .refine(
    (value) =>
      !Number.isNaN(Date.parse(value)) && new Date(value).toISOString() === value.replace("Z", ".000Z"),
    {
      message: "must be a real calendar time",
    },
  );

const spdxSchema = z
  .string()
  .min(1)
  .max(256)
  .regex(
    /^(\(?[A-Za-z0-9.+-]+\)?)( (AND|OR|WITH) \(?[A-Za-z0-9.+-]+\)?)*$/,
    "must be an SPDX license id or expression (e.g. Apache-2.0, MIT OR Apache-2.0, LicenseRef-custom)",
  );

const draftArtifact = z
  .strictObject({
    path: artifactPathSchema.optional(),
    uri: artifactUriSchema.optional(),
    sha256: sha256Hex.optional(),
    size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    /** What the file is for: the weights, a tokenizer, a projector… */
    role: z.enum(["weights", "tokenizer", "config", "projector", "adapter", "other"]).default("weights"),
  })
  .superRefine((artifact, context) => {
    if ((artifact.path === undefined) === (artifact.uri === undefined)) {
      context.addIssue({ code: "custom", message: "needs exactly one of path or uri", path: [] });
    }
    if (artifact.uri !== undefined && (artifact.sha256 === undefined || artifact.size === undefined)) {
      context.addIssue({
        code: "custom",
        message: "a remote artifact (uri) needs its sha256 and size: they cannot be computed here",
        path: artifact.sha256 === undefined ? ["sha256"] : ["size"],
      });
    }
  });

const license = z.strictObject({
  spdx: spdxSchema,
  /** Where the full text lives, when it is not a standard SPDX license. */
  url: z.string().url().max(2048).optional(),
  /** What the publisher claims the license allows; absent means "not claimed". */
  claims: z
    .strictObject({
      commercialUse: z.boolean().optional(),
      modification: z.boolean().optional(),
      redistribution: z.boolean().optional(),
      attributionRequired: z.boolean().optional(),
      notes: boundedText(1000).optional(),
    })
    .default({}),
});

const runtime = z.strictObject({
  format: z.enum(["gguf", "safetensors", "onnx", "mlx", "pytorch", "other"]),
  quantization: z
    .string()
    .min(1)
    .max(32)
    .regex(/^[A-Za-z0-9_.-]+$/, "must be a quantization name like Q4_K_M, F16 or int8"),
  backends: z
    .array(z.enum(["embedded", "ollama", "openai", "llama.cpp", "vllm", "sglang", "lmstudio"]))
    .min(1)
    .max(16),
});

const vramBand = z
  .strictObject({
    minMiB: z.number().int().min(0).max(16_777_216),
    maxMiB: z.number().int().min(0).max(16_777_216),
  })
  .refine((band) => band.minMiB <= band.maxMiB, {
    message: "minMiB must not exceed maxMiB",
    path: ["minMiB"],
  });

const intendedUse = z.strictObject({
  summary: boundedText(2000).min(1),
  tasks: z
    .array(
      z
        .string()
        .min(1)
        .max(64)
        .regex(/^[a-z0-9][a-z0-9-]*$/, "must be lower-case words joined by -"),
    )
    .max(32)
    .default([]),
  outOfScope: z.array(boundedText(500)).max(32).default([]),
});

function manifestShape<A extends z.ZodType>(artifact: A, complete: boolean) {
  return z.strictObject({
    schemaVersion: z.literal(MODEL_MANIFEST_SCHEMA_VERSION).default(MODEL_MANIFEST_SCHEMA_VERSION),
    name: modelNameSchema,
    version: modelVersionSchema,
    description: boundedText(2000).optional(),
    artifacts: z.array(artifact).min(1).max(64),
    license,
    runtime,
    vramBand,
    contextWindow: z.number().int().min(1).max(16_777_216),
    intendedUse,
    publisher: complete ? address : address.optional(),
    createdAt: complete ? createdAtSchema : createdAtSchema.optional(),
  });
}

/** What a publisher writes: sha256/size, publisher and createdAt may be left out. */
export const modelManifestDraftSchema = manifestShape(draftArtifact, false);

const completeArtifact = draftArtifact.superRefine((artifact, context) => {
  if (artifact.sha256 === undefined)
    context.addIssue({ code: "custom", message: "is required", path: ["sha256"] });
  if (artifact.size === undefined)
    context.addIssue({ code: "custom", message: "is required", path: ["size"] });
});

/** A manifest with every field present: what is signed and registered. */
export const modelManifestSchema = manifestShape(completeArtifact, true).superRefine((manifest, context) => {
  const seen = new Set<string>();
  manifest.artifacts.forEach((artifact, index) => {
    const key = (artifact.path ?? artifact.uri) as string;
    if (seen.has(key)) {
      context.addIssue({
        code: "custom",
        message: "duplicates another artifact",
        path: ["artifacts", index],
      });
    }
    seen.add(key);
  });
});

export type ModelManifestDraft = z.infer<typeof modelManifestDraftSchema>;
export type ModelManifestArtifact = ModelManifestDraft["artifacts"][number];
/** A complete manifest (every artifact has sha256 and size; publisher and createdAt set). */
export type ModelManifest = Omit<ModelManifestDraft, "artifacts" | "publisher" | "createdAt"> & {
  artifacts: (ModelManifestArtifact & { sha256: string; size: number })[];
  publisher: `0x${string}`;
  createdAt: string;
};

/** A signed manifest as it travels: the EIP-712 ModelManifest with the document as its payload. */
export type SignedModelManifest = SignedObject<"ModelManifest"> & { payload: ModelManifest };

/** One problem in a manifest, with its JSON path (`$.artifacts[0].sha256`). */
export interface ManifestIssue {
  path: string;
  message: string;
}

/** Formats a zod issue path as a JSON path. */
export function jsonPath(path: readonly PropertyKey[]): string {
  let out = "$";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (typeof segment === "string" && /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(segment)) out += `.${segment}`;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out;
}

function manifestInvalid(source: string, issues: ManifestIssue[]): GbtError {
  const shown = issues.slice(0, 50);
  const lines = shown.map((issue) => `  ${issue.path}: ${issue.message}`);
  if (issues.length > shown.length) lines.push(`  … and ${issues.length - shown.length} more`);
  return new GbtError(
    "MANIFEST_INVALID",
    `${source} is not a valid model manifest (${issues.length} problem${issues.length === 1 ? "" : "s"}):\n${lines.join("\n")}`,
    {
      details: { source, issues: shown },
      hint: "Fix each field named by its JSON path (see docs/ci/model-manifest.example.yaml).",
    },
  );
}

function issuesOf(error: z.ZodError, prefix: readonly PropertyKey[] = []): ManifestIssue[] {
  return error.issues.map((issue) => ({
    path: jsonPath([...prefix, ...issue.path]),
    message: issue.message,
  }));
}

export interface ParseManifestOptions {
  /** Names the manifest in errors (a file path, "the request body"…). */
  source?: string;
  /** JSON path prefix of the document inside a larger one (e.g. `payload`). */
  pathPrefix?: readonly PropertyKey[];
}

/** Parses a draft manifest; MANIFEST_INVALID listing every problem by JSON path. */
export function parseModelManifestDraft(
  value: unknown,
  options: ParseManifestOptions = {},
): ModelManifestDraft {
  const parsed = modelManifestDraftSchema.safeParse(value);
  if (!parsed.success)
    throw manifestInvalid(options.source ?? "The manifest", issuesOf(parsed.error, options.pathPrefix));
  return parsed.data;
}

/** Parses a complete manifest; MANIFEST_INVALID listing every problem by JSON path. */
export function parseModelManifest(value: unknown, options: ParseManifestOptions = {}): ModelManifest {
  const parsed = modelManifestSchema.safeParse(value);
  if (!parsed.success)
    throw manifestInvalid(options.source ?? "The manifest", issuesOf(parsed.error, options.pathPrefix));
  return parsed.data as ModelManifest;
}

/**
 * Reads manifest text: JSON when it starts with `{`, YAML otherwise (YAML 1.2 core schema: no
 * timestamps or other non-JSON values, duplicate keys refused, alias expansion bounded).
 */
export function parseManifestText(text: string, source = "The manifest"): unknown {
  if (Buffer.byteLength(text, "utf8") > MAX_MANIFEST_BYTES) {
    throw new GbtError("MANIFEST_INVALID", `${source} is over ${MAX_MANIFEST_BYTES} bytes.`, {
      details: { source, limit: MAX_MANIFEST_BYTES },
    });
  }
  const trimmed = text.replace(/^\uFEFF/, "").trimStart();
  if (trimmed.startsWith("{")) {
    try {
      return JSON.parse(trimmed);
    } catch (cause) {
      throw new GbtError("MANIFEST_INVALID", `${source} is not valid JSON: ${(cause as Error).message}.`, {
        details: { source },
        cause,
      });
    }
  }
  const document = parseDocument(trimmed, { schema: "core", uniqueKeys: true, prettyErrors: false });
  const [first] = document.errors;
  if (first) {
    const at = first.linePos?.[0];
    throw new GbtError(
      "MANIFEST_INVALID",
      `${source} is not valid YAML${at ? ` (line ${at.line}, column ${at.col})` : ""}: ${first.message.split("\n")[0]}.`,
      { details: { source, ...(at ? { line: at.line, column: at.col } : {}) } },
    );
  }
  try {
    return document.toJS({ maxAliasCount: 100 });
  } catch (cause) {
    throw new GbtError("MANIFEST_INVALID", `${source} cannot be read as YAML: ${(cause as Error).message}.`, {
      details: { source },
      cause,
    });
  }
}

/** The canonical hash of a complete manifest: keccak256 of its canonical JSON (the EIP-712 `manifestHash`). */
export function modelManifestHash(manifest: ModelManifest): `0x${string}` {
  return hashPayload(manifest);
}

/** `name@version`, the registry key of a manifest. */
export function modelRef(manifest: { name: string; version: string }): string {
  return `${manifest.name}@${manifest.version}`;
}

/** Splits `name@version` (the last `@`); USAGE when either side is not valid. */
export function parseModelRef(text: string): { name: string; version: string } {
  const at = text.lastIndexOf("@");
  const name = modelNameSchema.safeParse(at > 0 ? text.slice(0, at) : "");
  const version = modelVersionSchema.safeParse(at > 0 ? text.slice(at + 1) : "");
  if (!name.success || !version.success) {
    throw new GbtError("USAGE", `'${text}' is not a model reference NAME@VERSION.`, {
      hint: "Write it like my-model@1.2.0, or pass a manifest file.",
    });
  }
  return { name: name.data, version: version.data };
}

export interface SignModelManifestParameters {
  manifest: ModelManifest;
  chainId: number;
}

/** Signs a complete manifest with the publisher's key (its address must be the manifest's `publisher`). */
export async function signModelManifest(
  account: LocalAccount,
  { manifest, chainId }: SignModelManifestParameters,
): Promise<SignedModelManifest> {
  const complete = parseModelManifest(manifest);
  const signed = await signObject(account, {
    kind: "ModelManifest",
    chainId,
    message: {
      name: complete.name,
      version: complete.version,
      publisher: complete.publisher,
      createdAt: Math.floor(Date.parse(complete.createdAt) / 1000),
    },
    payload: complete,
  });
  return signed as SignedModelManifest;
}

export type VerifyModelManifestOptions = Omit<VerifyObjectOptions<"ModelManifest">, "kind" | "audience">;

/**
 * Verifies a signed manifest from anywhere: the EIP-712 signature and payload binding (see
 * verifyObject), the document's shape (MANIFEST_INVALID with `$.payload…` paths), and that the
 * signed name, version, publisher and createdAt are the document's (INVALID_OBJECT otherwise).
 */
export async function verifyModelManifest(
  value: unknown,
  options: VerifyModelManifestOptions,
): Promise<SignedModelManifest> {
  const signed = await verifyObject(value, { ...options, kind: "ModelManifest" });
  const manifest = parseModelManifest(signed.payload, {
    source: "The signed manifest",
    pathPrefix: ["payload"],
  });
  // The hash was checked over the payload as sent; a parse that changed it (defaults, case) is not the signed document.
  if (modelManifestHash(manifest) !== signed.message.manifestHash) {
    throw new GbtError("MANIFEST_INVALID", "The signed manifest's document is not in its normal form.", {
      hint: "Sign manifests with `gbt model publish`, which writes the normal form.",
    });
  }
  const message = signed.message;
  const mismatched = [
    message.name !== manifest.name ? "name" : null,
    message.version !== manifest.version ? "version" : null,
    message.publisher.toLowerCase() !== manifest.publisher.toLowerCase() ? "publisher" : null,
    message.createdAt !== Math.floor(Date.parse(manifest.createdAt) / 1000) ? "createdAt" : null,
  ].filter((field) => field !== null);
  if (mismatched.length > 0) {
    throw new GbtError(
      "INVALID_OBJECT",
      `The signed ModelManifest's ${mismatched.join(", ")} differ from its document.`,
      { details: { fields: mismatched } },
    );
  }
  return { ...signed, payload: manifest };
}
