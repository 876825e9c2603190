/**
 * Manifests and the files they describe: reading a manifest file, resolving artifact paths inside
 * the manifest's directory (never outside it, even through a symlinked directory), filling in or
 * checking each artifact's sha256 and size, and re-hashing them to verify a signed manifest.
 */
import { readFile, realpath } from "node:fs/promises";
import { dirname, isAbsolute, relative, resolve, sep } from "node:path";
import {
  GbtError,
  type HashProgress,
  type ModelManifest,
  type ModelManifestDraft,
  parseManifestText,
  parseModelManifest,
  parseModelManifestDraft,
  sha256File,
} from "@gbt/protocol";

/** Progress of one artifact's hashing, for a CLI's stderr. */
export interface ArtifactProgress extends HashProgress {
  index: number;
  path: string;
}

/** Reads a manifest file (JSON or YAML) as raw data; MANIFEST_INVALID / NOT_FOUND naming the file. */
export async function readManifestFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") {
      throw new GbtError("NOT_FOUND", `No manifest at ${path}.`, { details: { path }, cause });
    }
    throw new GbtError("IO_ERROR", `Cannot read the manifest ${path}.`, { details: { path }, cause });
  }
  return parseManifestText(text, path);
}

/**
 * The file of a `path` artifact under `baseDir`. The schema already refuses absolute paths and
 * `..`; this also refuses a path whose real location (after symlinks) leaves `baseDir`.
 */
export async function resolveArtifactFile(
  baseDir: string,
  artifactPath: string,
  index: number,
): Promise<string> {
  const root = await realpath(baseDir).catch(() => resolve(baseDir));
  const lexical = resolve(root, artifactPath);
  let real: string;
  try {
    real = await realpath(lexical);
  } catch {
    return lexical; // Missing: hashing reports NOT_FOUND with the path the user wrote.
  }
  const inside = relative(root, real);
  if (inside === "" || inside.startsWith(`..${sep}`) || inside === ".." || isAbsolute(inside)) {
    throw new GbtError(
      "MANIFEST_INVALID",
      `$.artifacts[${index}].path: ${artifactPath} leads outside the manifest's directory.`,
      {
        details: {
          source: artifactPath,
          issues: [{ path: `$.artifacts[${index}].path`, message: "leads outside the manifest's directory" }],
        },
        hint: "Keep artifacts (or copies of them) under the manifest's directory.",
      },
    );
  }
  return real;
}

export interface CompleteManifestParameters {
  /** The draft as read from the file (unparsed). */
  document: unknown;
  /** Names the manifest in errors. */
  source: string;
  /** Directory artifact paths are relative to. */
  baseDir: string;
  /** The publisher's address (the signing key's); must equal the manifest's when it names one. */
  publisher: `0x${string}`;
  now?: () => number;
  onProgress?: (progress: ArtifactProgress) => void;
}

/**
 * Turns a draft into a complete manifest: hashes every local artifact (streaming), fills in a
 * missing sha256/size or checks a given one (ARTIFACT_MISMATCH naming the artifact), fills in
 * publisher and createdAt (seconds precision).
 */
export async function completeManifest(parameters: CompleteManifestParameters): Promise<ModelManifest> {
  const { source, baseDir, publisher } = parameters;
  const draft: ModelManifestDraft = parseModelManifestDraft(parameters.document, { source });
  if (draft.publisher !== undefined && draft.publisher.toLowerCase() !== publisher.toLowerCase()) {
    throw new GbtError(
      "SIGNER_MISMATCH",
      `The manifest names publisher ${draft.publisher}, but the key is ${publisher}'s.`,
      {
        details: { manifest: draft.publisher, key: publisher },
        hint: "Sign with the publisher's key (GBT_PUBLISHER_KEY or --key-file), or fix $.publisher.",
      },
    );
  }
  const artifacts = [];
  for (const [index, artifact] of draft.artifacts.entries()) {
    if (artifact.path === undefined) {
      artifacts.push(artifact);
      continue;
    }
    const file = await resolveArtifactFile(baseDir, artifact.path, index);
    const digest = await sha256File(file, {
      onProgress: (progress) =>
        parameters.onProgress?.({ ...progress, index, path: artifact.path as string }),
    });
    checkArtifact(index, artifact, digest);
    artifacts.push({ ...artifact, sha256: digest.sha256, size: digest.size });
  }
  const now = parameters.now ?? Date.now;
  const createdAt =
    draft.createdAt ?? new Date(Math.floor(now() / 1000) * 1000).toISOString().replace(".000Z", "Z");
  return parseModelManifest({ ...draft, artifacts, publisher, createdAt }, { source });
}

function checkArtifact(
  index: number,
  artifact: { path?: string | undefined; sha256?: string | undefined; size?: number | undefined },
  digest: { sha256: string; size: number },
): void {
  const problems: string[] = [];
  if (artifact.size !== undefined && artifact.size !== digest.size) problems.push("size");
  if (artifact.sha256 !== undefined && artifact.sha256 !== digest.sha256) problems.push("sha256");
  if (problems.length === 0) return;
  throw new GbtError(
    "ARTIFACT_MISMATCH",
    `Artifact ${artifact.path} ($.artifacts[${index}]) does not match its manifest: ${problems.join(" and ")} differ.`,
    {
      details: {
        path: `$.artifacts[${index}]`,
        file: artifact.path,
        expected: { sha256: artifact.sha256, size: artifact.size },
        actual: digest,
      },
      hint: "The file changed after the manifest was written: rebuild it, or remove the stale sha256/size so publish fills them in.",
    },
  );
}

export interface ArtifactCheck {
  index: number;
  path?: string;
  uri?: string;
  sha256: string;
  size: number;
  /** `verified` when re-hashed and equal; `remote` when the artifact is a URI (not fetched). */
  status: "verified" | "remote";
}

/** Re-hashes every local artifact of a complete manifest; ARTIFACT_MISMATCH on the first that differs. */
export async function rehashArtifacts(
  manifest: ModelManifest,
  baseDir: string,
  onProgress?: (progress: ArtifactProgress) => void,
): Promise<ArtifactCheck[]> {
  const checks: ArtifactCheck[] = [];
  for (const [index, artifact] of manifest.artifacts.entries()) {
    if (artifact.path === undefined) {
      checks.push({
        index,
        uri: artifact.uri as string,
        sha256: artifact.sha256,
        size: artifact.size,
        status: "remote",
      });
      continue;
    }
    const file = await resolveArtifactFile(baseDir, artifact.path, index);
    const digest = await sha256File(file, {
      onProgress: (progress) => onProgress?.({ ...progress, index, path: artifact.path as string }),
    });
    checkArtifact(index, artifact, digest);
    checks.push({ index, path: artifact.path, sha256: digest.sha256, size: digest.size, status: "verified" });
  }
  return checks;
}

/** The directory a manifest file's artifact paths are relative to. */
export function manifestBaseDir(manifestPath: string): string {
  return dirname(resolve(manifestPath));
}
