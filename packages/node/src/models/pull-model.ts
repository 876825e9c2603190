/**
 * Pulls one model into the models dir from any source (see model-source.ts) and says what was
 * installed: `<modelsDir>/<id>.gguf`, its sha256 and size. A registry reference fetches the signed
 * manifest from the gateway, verifies its signature, checks the manifest fits this node (runtime
 * backends, VRAM band) and downloads its weights checked against the signed sha256 and size. The
 * policy says which source kinds and redirect hosts are allowed. Concurrent pulls of one file in
 * this process share one download.
 */

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { access, mkdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { type GatewayClient, GbtError, type ModelManifest, verifyModelManifest } from "@gbt/protocol";
import type { Address } from "viem";
import { generateTestModel } from "../test-model/test-model.js";
import {
  type DownloadArtifactParameters,
  type DownloadProgress,
  downloadArtifact,
} from "./download-artifact.js";
import { checkManifestFits } from "./manifest-fit.js";
import { checkModelId, defaultModelId, type ModelSource, parseModelSource } from "./model-source.js";

export const DEFAULT_HF_ENDPOINT = "https://huggingface.co";
/** Hosts the hub redirects file downloads to (its LFS and Xet CDNs). */
const HF_CDN_SUFFIXES = [".huggingface.co", ".hf.co"];

/** Which sources a pull may use, and where its redirects may go. */
export interface PullPolicy {
  /** Source kinds allowed (default: all for the CLI; the agent passes its own). */
  sources?: ReadonlyArray<ModelSource["kind"]>;
  /** Extra hosts (host or host:port) a redirect may go to. */
  allowedHosts?: readonly string[];
  /** Allow plain-http URLs on loopback (tests, a local mirror). */
  allowLoopbackHttp?: boolean;
}

/** What reads the gateway registry: the gateway client (or any object with these calls). */
export type RegistryReader = Pick<GatewayClient, "getRegistryModel" | "getInfo">;

export interface PullModelOptions {
  modelsDir: string;
  /** The node's backend kind (embedded, ollama, openai). */
  backendKind: string;
  /** Install as this id instead of the source's default. */
  as?: string;
  /** Required for a bare URL; checked for every source that has a file. */
  sha256?: string;
  policy?: PullPolicy;
  registry?: RegistryReader;
  /** Chain the manifest signature must be for (default: the gateway's). */
  chainId?: number;
  /** Only accept manifests signed by these publishers. */
  allowedPublishers?: readonly Address[];
  /** The Hugging Face hub (default: GBT_HF_ENDPOINT, then HF_ENDPOINT, then huggingface.co). */
  hfEndpoint?: string;
  /** The GPU memory the backend will use, in MiB (0: CPU only; null: unknown, the check is skipped). */
  vramMiB?: () => Promise<number | null>;
  /** The Ollama backend's own pull (Backend.pullModel). */
  ollamaPull?: (name: string, signal?: AbortSignal) => Promise<void>;
  signal?: AbortSignal;
  onProgress?: (progress: PullProgressEvent) => void;
  /** Passed to the downloader (tests inject a full disk). */
  download?: Pick<
    DownloadArtifactParameters,
    "freeBytes" | "openSink" | "idleTimeoutMs" | "maxStalledAttempts"
  >;
  env?: NodeJS.ProcessEnv;
}

export interface PullProgressEvent extends DownloadProgress {
  id: string;
  phase: "resolve" | "download" | "verify" | "done";
}

export interface PullModelResult {
  id: string;
  /** The installed file; null for an Ollama pull (Ollama keeps its own store). */
  path: string | null;
  sha256: string | null;
  bytes: number;
  source: string;
  kind: ModelSource["kind"];
  /** The file was there already, with the expected hash: nothing was downloaded. */
  alreadyPresent: boolean;
  /** The registry manifest, when the source was one. */
  manifest?: { ref: string; publisher: string; manifestHash: string };
}

/** Pulls under way in this process, by destination file. */
const inFlight = new Map<string, { source: string; pull: Promise<PullModelResult> }>();

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function sha256File(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest("hex"), bytes };
}

/** `<modelsDir>/<id>.gguf`, refusing any id that would leave the models dir. */
export function modelFilePath(modelsDir: string, id: string): string {
  const dir = resolve(modelsDir);
  const file = resolve(dir, `${checkModelId(id)}.gguf`);
  if (dirname(file) !== dir) {
    throw new GbtError("USAGE", `Model id ${JSON.stringify(id)} leaves the models dir.`, {
      details: { id, dir },
    });
  }
  return file;
}

function isLoopback(host: string): boolean {
  return host === "127.0.0.1" || host === "localhost" || host === "[::1]";
}

function checkPolicy(source: ModelSource, policy: PullPolicy): void {
  if (policy.sources && !policy.sources.includes(source.kind)) {
    throw new GbtError("POLICY_DENIED", `This node's pull policy does not allow ${source.kind} sources.`, {
      details: { source: source.text, kind: source.kind, allowed: policy.sources },
      hint:
        source.kind === "url"
          ? "Bare URLs need the owner's consent: set agent.pullPolicy.allowUrls to true in the node's config, or publish the model to the registry."
          : `Allowed here: ${policy.sources.join(", ")}.`,
    });
  }
}

function checkUrl(url: URL, policy: PullPolicy, what: string): void {
  if (url.protocol === "https:") return;
  if (url.protocol === "http:" && policy.allowLoopbackHttp && isLoopback(url.hostname)) return;
  throw new GbtError("POLICY_DENIED", `${what} ${url.href} is not https.`, {
    details: { url: url.href },
    hint: "Download over https (plain http only from 127.0.0.1, and only where explicitly allowed).",
  });
}

function hostMatcher(first: URL, policy: PullPolicy, extra: (host: string) => boolean = () => false) {
  return (host: string) => host === first.host || (policy.allowedHosts ?? []).includes(host) || extra(host);
}

/** A pull before any request: its parsed source, the id and file it installs as (null path for Ollama). */
export interface PlannedPull {
  source: ModelSource;
  id: string;
  path: string | null;
}

/**
 * Checks a pull without touching the network: the source parses, the policy allows its kind, a
 * bare URL has its sha256 and the right scheme, and the id stays inside the models dir.
 */
export function planPull(
  sourceText: string,
  options: Pick<PullModelOptions, "modelsDir" | "backendKind" | "as" | "sha256" | "policy">,
): PlannedPull {
  const source = parseModelSource(sourceText, { backendKind: options.backendKind });
  const policy = options.policy ?? {};
  checkPolicy(source, policy);
  if (source.kind === "url") {
    checkUrl(new URL(source.url), policy, "The URL");
    if (options.sha256 === undefined) throw missingSha256(source.url);
  }
  if (options.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(options.sha256)) {
    throw new GbtError("USAGE", "--sha256 must be 64 hex characters.", {
      details: { sha256: options.sha256 },
    });
  }
  if (source.kind === "ollama") return { source, id: source.name, path: null };
  const id = checkModelId(options.as ?? defaultModelId(source));
  return { source, id, path: modelFilePath(options.modelsDir, id) };
}

function missingSha256(url: string): GbtError {
  return new GbtError(
    "MISSING_INPUT",
    "A bare URL needs --sha256: nothing else can tell right bytes from wrong ones.",
    {
      details: { source: url },
      hint: "Pass --sha256 HEX (the file's sha256, as its publisher lists it), or publish the model to the registry.",
    },
  );
}

/** The signed manifest a registry pull keeps beside the model file (`<id>.manifest.json`). */
export function manifestSidecarPath(modelsDir: string, id: string): string {
  return join(resolve(modelsDir), `${checkModelId(id)}.manifest.json`);
}

/** Pulls `sourceText` (see the module header); resolves with what is installed. */
export async function pullModel(sourceText: string, options: PullModelOptions): Promise<PullModelResult> {
  const { source, id } = planPull(sourceText, options);
  if (source.kind === "ollama") {
    if (!options.ollamaPull) {
      throw new GbtError("PREFLIGHT_FAILED", `Ollama model names pull only on the Ollama backend.`, {
        details: { source: source.text },
      });
    }
    await options.ollamaPull(source.name, options.signal);
    return {
      id: source.name,
      path: null,
      sha256: null,
      bytes: 0,
      source: source.text,
      kind: "ollama",
      alreadyPresent: false,
    };
  }
  const path = modelFilePath(options.modelsDir, id);
  const running = inFlight.get(path);
  if (running) {
    if (running.source === source.text) return running.pull;
    throw new GbtError("CONFLICT", `Another pull is installing ${id} from ${running.source}.`, {
      details: { id, source: source.text, running: running.source },
      hint: "Wait for it to finish, or install this one under another id with --as ID.",
    });
  }
  const pull = pullFile(source, id, path, options).finally(() => inFlight.delete(path));
  inFlight.set(path, { source: source.text, pull });
  return pull;
}

async function pullFile(
  source: Exclude<ModelSource, { kind: "ollama" }>,
  id: string,
  path: string,
  options: PullModelOptions,
): Promise<PullModelResult> {
  const policy = options.policy ?? {};
  const env = options.env ?? process.env;
  const progress = (
    phase: PullProgressEvent["phase"],
    p: DownloadProgress = { bytes: 0, totalBytes: null },
  ) => options.onProgress?.({ id, phase, ...p });
  const base = { id, path, source: source.text, kind: source.kind } as const;
  await mkdir(dirname(path), { recursive: true });

  if (source.kind === "test") {
    const present = await exists(path);
    if (!present) await generateTestModel(path, { shape: source.shape });
    const file = await sha256File(path);
    progress("done", { bytes: file.bytes, totalBytes: file.bytes });
    return { ...base, ...file, alreadyPresent: present };
  }

  let url: URL;
  let sha256 = options.sha256?.toLowerCase();
  let size: number | undefined;
  let allowHost: (host: string) => boolean;
  let headers: Record<string, string> | undefined;
  let manifestInfo: PullModelResult["manifest"];
  let signedManifest: unknown;
  /** A registry pull keeps its signed manifest beside the file, for model.switch's fit check. */
  const keepManifest = async () => {
    if (signedManifest !== undefined) {
      await writeFile(
        manifestSidecarPath(options.modelsDir, id),
        `${JSON.stringify(signedManifest, null, 2)}\n`,
      );
    }
  };
  progress("resolve");
  if (source.kind === "registry") {
    const resolved = await resolveRegistry(source, options);
    url = resolved.url;
    size = resolved.size;
    if (sha256 !== undefined && sha256 !== resolved.sha256) {
      throw new GbtError(
        "ARTIFACT_MISMATCH",
        `--sha256 differs from the signed manifest's ${resolved.sha256}.`,
        {
          details: { expected: sha256, signed: resolved.sha256 },
        },
      );
    }
    sha256 = resolved.sha256;
    manifestInfo = resolved.manifest;
    signedManifest = resolved.signed;
    allowHost = hostMatcher(url, policy, resolved.extraHost);
    if (url.protocol === "http:" && !isLoopback(url.hostname)) {
      // The signed sha256 guards the bytes; plain http is still refused off loopback.
      checkUrl(url, policy, "The manifest's artifact");
    }
  } else if (source.kind === "hf") {
    const endpoint = new URL(
      options.hfEndpoint ?? (env.GBT_HF_ENDPOINT || env.HF_ENDPOINT || DEFAULT_HF_ENDPOINT),
    );
    url = new URL(
      `${endpoint.pathname.replace(/\/$/, "")}/${source.owner}/${source.repo}/resolve/main/${source.file.split("/").map(encodeURIComponent).join("/")}`,
      endpoint,
    );
    checkUrl(url, policy, "The hub endpoint");
    allowHost = hostMatcher(url, policy, (host) => HF_CDN_SUFFIXES.some((suffix) => host.endsWith(suffix)));
    const token = env.HF_TOKEN;
    if (token) headers = { authorization: `Bearer ${token}` };
  } else {
    url = new URL(source.url);
    checkUrl(url, policy, "The URL");
    if (sha256 === undefined) throw missingSha256(source.url);
    allowHost = hostMatcher(url, policy);
  }

  if (await exists(path)) {
    const file = await sha256File(path);
    if (sha256 === undefined || file.sha256 === sha256) {
      await keepManifest();
      progress("done", { bytes: file.bytes, totalBytes: file.bytes });
      return { ...base, ...file, alreadyPresent: true, ...(manifestInfo ? { manifest: manifestInfo } : {}) };
    }
    throw new GbtError("ALREADY_EXISTS", `${path} exists with other content (sha256 ${file.sha256}).`, {
      details: { path, sha256: file.sha256, expected: sha256 },
      hint: "Install under another id with --as ID, or remove the file first (gbt model remove / model.remove).",
    });
  }

  const downloaded = await downloadArtifact({
    url: url.href,
    destination: path,
    ...(sha256 !== undefined ? { sha256 } : {}),
    ...(size !== undefined ? { size } : {}),
    allowHost,
    ...(headers ? { headers } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    onProgress: (p) => progress("download", p),
    ...options.download,
  });
  await keepManifest();
  progress("done", { bytes: downloaded.bytes, totalBytes: downloaded.bytes });
  return {
    ...base,
    sha256: downloaded.sha256,
    bytes: downloaded.bytes,
    alreadyPresent: false,
    ...(manifestInfo ? { manifest: manifestInfo } : {}),
  };
}

/** The signed manifest's weights: URL, sha256, size, after the signature and the node fit are checked. */
async function resolveRegistry(
  source: Extract<ModelSource, { kind: "registry" }>,
  options: PullModelOptions,
): Promise<{
  url: URL;
  sha256: string;
  size: number;
  manifest: NonNullable<PullModelResult["manifest"]>;
  extraHost: (host: string) => boolean;
  signed: unknown;
}> {
  if (!options.registry) {
    throw new GbtError("USAGE", `No gateway to fetch ${source.text} from.`, {
      hint: "Pass --gateway URL (or set GBT_GATEWAY_URL), or name an hf: or https:// source.",
    });
  }
  const entry = await options.registry.getRegistryModel({ name: source.name, version: source.version });
  if (entry.status === "delisted") {
    throw new GbtError("POLICY_DENIED", `${source.text} is delisted from the registry.`, {
      details: { reason: entry.statusReason },
      hint: "Pull another version.",
    });
  }
  const chainId = options.chainId ?? (await options.registry.getInfo({ retry: true })).chainId;
  const signed = await verifyModelManifest(entry.signed, {
    chainId,
    ...(options.allowedPublishers ? { allowedSigners: [...options.allowedPublishers] } : {}),
  });
  const manifest: ModelManifest = signed.payload;
  await checkManifestFits(manifest, {
    backendKind: options.backendKind,
    ...(options.vramMiB ? { vramMiB: await options.vramMiB() } : {}),
  });
  const weights = manifest.artifacts.filter((artifact) => artifact.role === "weights");
  const artifact = weights[0];
  if (weights.length !== 1 || !artifact) {
    throw new GbtError(
      "MANIFEST_INVALID",
      `${source.text} has ${weights.length} weights artifacts; a pull needs exactly one.`,
      {
        details: { ref: source.text },
      },
    );
  }
  if (manifest.runtime.format !== "gguf") {
    throw new GbtError(
      "PREFLIGHT_FAILED",
      `${source.text} is ${manifest.runtime.format}; this node serves GGUF files.`,
    );
  }
  if (artifact.uri === undefined) {
    throw new GbtError(
      "MANIFEST_INVALID",
      `${source.text}'s weights have no URI (only a local path), so no node can download them.`,
      {
        details: { path: artifact.path },
        hint: "The publisher must list the artifact with a uri (https://… or hf://…) and publish a new version.",
      },
    );
  }
  let url: URL;
  let extraHost: (host: string) => boolean = () => false;
  if (artifact.uri.startsWith("hf://")) {
    const env = options.env ?? process.env;
    const endpoint = new URL(
      options.hfEndpoint ?? (env.GBT_HF_ENDPOINT || env.HF_ENDPOINT || DEFAULT_HF_ENDPOINT),
    );
    const [owner, repo, ...file] = artifact.uri.slice(5).split("/");
    url = new URL(
      `${endpoint.pathname.replace(/\/$/, "")}/${owner}/${repo}/resolve/main/${file.join("/")}`,
      endpoint,
    );
    extraHost = (host) => HF_CDN_SUFFIXES.some((suffix) => host.endsWith(suffix));
  } else if (artifact.uri.startsWith("https://") || artifact.uri.startsWith("http://")) {
    url = new URL(artifact.uri);
  } else {
    throw new GbtError(
      "PREFLIGHT_FAILED",
      `${source.text}'s weights are at ${artifact.uri}; this node downloads https, http and hf URIs only.`,
    );
  }
  return {
    url,
    sha256: artifact.sha256,
    size: artifact.size,
    extraHost,
    signed,
    manifest: {
      ref: source.text,
      publisher: signed.message.publisher,
      manifestHash: signed.message.manifestHash,
    },
  };
}
