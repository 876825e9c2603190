/**
 * What a pull may name, parsed once: a registry reference `name@version`, a Hugging Face file
 * `hf:OWNER/REPO/FILE.gguf`, a bare `https://` URL (with its sha256), a generated test model, or,
 * on the Ollama backend, an Ollama model name. Each source has the model id it installs as by
 * default; every id is checked to name a file directly inside the models dir.
 */
import { GbtError, modelNameSchema, modelVersionSchema } from "@gbt/protocol";

export type ModelSource =
  | { kind: "registry"; name: string; version: string; text: string }
  | { kind: "hf"; owner: string; repo: string; file: string; text: string }
  | { kind: "url"; url: string; text: string }
  | { kind: "test"; shape: "tiny" | "small"; text: string }
  | { kind: "ollama"; name: string; text: string };

/** The generated test models a pull may create, by id. */
export const pullableTestModels: Record<string, "tiny" | "small"> = {
  "gbt-test-tiny": "tiny",
  "gbt-test-small": "small",
};

const HF_PART = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$/;

export interface ParseModelSourceOptions {
  /** The backend's kind: on `ollama` a plain name is an Ollama model. */
  backendKind?: string;
}

function usage(text: string, why: string): GbtError {
  return new GbtError("USAGE", `${JSON.stringify(text)} is not a model source: ${why}.`, {
    details: { source: text },
    hint: "Name a registered model (my-model@1.0.0), a Hugging Face file (hf:OWNER/REPO/FILE.gguf), an https:// URL with --sha256, or gbt-test-tiny.",
  });
}

/** Parses a source as `gbt model pull` and model.pull take it. */
export function parseModelSource(text: string, options: ParseModelSourceOptions = {}): ModelSource {
  if (text.startsWith("hf:")) {
    const parts = text.slice(3).split("/");
    const [owner, repo, ...rest] = parts;
    const file = rest.join("/");
    if (!owner || !repo || rest.length === 0 || ![owner, repo, ...rest].every((part) => HF_PART.test(part))) {
      throw usage(text, "write hf:OWNER/REPO/FILE.gguf");
    }
    if (!file.toLowerCase().endsWith(".gguf")) throw usage(text, "a Hugging Face source names a .gguf file");
    return { kind: "hf", owner, repo, file, text };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw usage(text, "not a valid URL");
    }
    if (url.protocol !== "https:" && url.protocol !== "http:")
      throw usage(text, `${url.protocol} URLs are not supported`);
    if (url.username || url.password) throw usage(text, "credentials in a URL are not accepted");
    return { kind: "url", url: url.href, text };
  }
  const shape = pullableTestModels[text];
  if (shape) return { kind: "test", shape, text };
  const at = text.lastIndexOf("@");
  if (at > 0) {
    const name = modelNameSchema.safeParse(text.slice(0, at));
    const version = modelVersionSchema.safeParse(text.slice(at + 1));
    if (name.success && version.success)
      return { kind: "registry", name: name.data, version: version.data, text };
  }
  if (
    options.backendKind === "ollama" &&
    /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/.test(text) &&
    !text.includes("..")
  ) {
    return { kind: "ollama", name: text, text };
  }
  throw usage(text, "not NAME@VERSION, hf:…, a URL or a test model");
}

/** The id a source installs as when `--as` is not given. */
export function defaultModelId(source: ModelSource): string {
  switch (source.kind) {
    case "registry":
      return source.name;
    case "hf":
      return stripGguf(source.file.split("/").pop() ?? source.file);
    case "url":
      return stripGguf(decodeURIComponent(new URL(source.url).pathname.split("/").pop() ?? ""));
    case "test":
      return source.text;
    case "ollama":
      return source.name;
  }
}

function stripGguf(file: string): string {
  return file.replace(/\.gguf$/i, "");
}

/** Checks a model id names a file directly in the models dir (`<id>.gguf`); USAGE otherwise. */
export function checkModelId(id: string): string {
  if (!MODEL_ID.test(id) || id.includes("..")) {
    throw new GbtError("USAGE", `${JSON.stringify(id)} is not a usable model id.`, {
      details: { id },
      hint: "Use letters, digits and . _ : + - (at most 128, starting with a letter or digit); pass --as ID to choose one.",
    });
  }
  return id;
}
