/**
 * The model registry's records in gateway.db: one row per name@version holding the signed
 * manifest exactly as verified, its status (pending → approved → delisted) and its artifacts'
 * sha256 (indexed, for the serving policy). A version is immutable: resubmitting the same
 * content is a no-op, other content is a CONFLICT. A name belongs to the publisher who registered
 * it first; versions signed by anyone else are a CONFLICT too.
 */
import {
  GbtError,
  type RegistryEntry,
  type RegistryModel,
  type RegistryStatus,
  type SignedModelManifest,
} from "@gbt/protocol";
import type { GatewayDatabase } from "../gateway-database.js";
import { migrateModelRegistry } from "./registry-database.js";

interface Row {
  name: string;
  version: string;
  publisher: string;
  manifest_hash: string;
  signed_json: string;
  status: RegistryStatus;
  created_at: string;
  submitted_at: number;
  status_changed_at: number;
  status_reason: string | null;
  artifact_count: number;
  size_bytes: number;
}

/** Allowed status changes; anything else is a CONFLICT. */
const transitions: Record<"approve" | "delist", { from: RegistryStatus[]; to: RegistryStatus }> = {
  approve: { from: ["pending"], to: "approved" },
  delist: { from: ["pending", "approved"], to: "delisted" },
};

export class ModelRegistryStore {
  readonly #db: GatewayDatabase;
  readonly #now: () => number;

  constructor(db: GatewayDatabase, now: () => number = Date.now) {
    migrateModelRegistry(db);
    this.#db = db;
    this.#now = now;
  }

  /** Stores a verified signed manifest; `created` false when the same content was already there. */
  submit(signed: SignedModelManifest): { created: boolean; model: RegistryModel } {
    const manifest = signed.payload;
    const now = this.#now();
    return this.#db
      .transaction(() => {
        const existing = this.#row(manifest.name, manifest.version);
        if (existing) {
          if (existing.manifest_hash !== signed.message.manifestHash) {
            throw new GbtError(
              "CONFLICT",
              `${manifest.name}@${manifest.version} is already registered with other content; versions are immutable.`,
              {
                details: {
                  name: manifest.name,
                  version: manifest.version,
                  registered: existing.manifest_hash,
                },
                hint: "Publish the change under a new version.",
              },
            );
          }
          return { created: false, model: toModel(existing) };
        }
        // A name belongs to its first publisher: nobody else can add versions under it.
        const owner = this.#db
          .prepare("SELECT publisher FROM registry_models WHERE name = ? LIMIT 1")
          .get(manifest.name) as { publisher: string } | undefined;
        if (owner && owner.publisher.toLowerCase() !== signed.message.publisher.toLowerCase()) {
          throw new GbtError(
            "CONFLICT",
            `The model name ${manifest.name} belongs to another publisher (${owner.publisher}).`,
            {
              details: { name: manifest.name, owner: owner.publisher, publisher: signed.message.publisher },
              hint: "Publish under your own model name.",
            },
          );
        }
        const row: Row = {
          name: manifest.name,
          version: manifest.version,
          publisher: signed.message.publisher,
          manifest_hash: signed.message.manifestHash,
          signed_json: JSON.stringify(signed),
          status: "pending",
          created_at: manifest.createdAt,
          submitted_at: now,
          status_changed_at: now,
          status_reason: null,
          artifact_count: manifest.artifacts.length,
          size_bytes: manifest.artifacts.reduce((sum, artifact) => sum + artifact.size, 0),
        };
        this.#db
          .prepare(
            `INSERT INTO registry_models (name, version, publisher, manifest_hash, signed_json, status, created_at,
               submitted_at, status_changed_at, status_reason, artifact_count, size_bytes)
             VALUES (@name, @version, @publisher, @manifest_hash, @signed_json, @status, @created_at,
               @submitted_at, @status_changed_at, @status_reason, @artifact_count, @size_bytes)`,
          )
          .run(row);
        const artifact = this.#db.prepare(
          "INSERT INTO registry_artifacts (name, version, idx, sha256, size) VALUES (?, ?, ?, ?, ?)",
        );
        for (const [index, item] of manifest.artifacts.entries()) {
          artifact.run(manifest.name, manifest.version, index, item.sha256, item.size);
        }
        this.#event(manifest.name, manifest.version, "pending", "submitted", now);
        return { created: true, model: toModel(row) };
      })
      .immediate();
  }

  get(name: string, version: string): RegistryModel {
    const row = this.#row(name, version);
    if (!row) {
      throw new GbtError("NOT_FOUND", `No model ${name}@${version} in the registry.`, {
        details: { name, version },
        hint: "List the registry with `gbt model list`.",
      });
    }
    return toModel(row);
  }

  list(filter: { status?: RegistryStatus; name?: string } = {}): RegistryEntry[] {
    const rows = this.#db
      .prepare(
        `SELECT * FROM registry_models
         WHERE (@status IS NULL OR status = @status) AND (@name IS NULL OR name = @name)
         ORDER BY submitted_at DESC, name, version`,
      )
      .all({ status: filter.status ?? null, name: filter.name ?? null }) as Row[];
    return rows.map(toEntry);
  }

  /** Admin: approve or delist; the same transition again is a no-op, an impossible one a CONFLICT. */
  setStatus(name: string, version: string, action: "approve" | "delist", reason?: string): RegistryModel {
    const rule = transitions[action];
    return this.#db
      .transaction(() => {
        const row = this.#row(name, version);
        if (!row) return this.get(name, version);
        if (row.status === rule.to) return toModel(row);
        if (!rule.from.includes(row.status)) {
          throw new GbtError("CONFLICT", `${name}@${version} is ${row.status}; it cannot be ${rule.to}.`, {
            details: { name, version, status: row.status },
            hint: "A delisted version stays delisted; publish a new version.",
          });
        }
        const now = this.#now();
        this.#db
          .prepare(
            "UPDATE registry_models SET status = ?, status_changed_at = ?, status_reason = ? WHERE name = ? AND version = ?",
          )
          .run(rule.to, now, reason ?? null, name, version);
        this.#event(name, version, rule.to, reason ?? null, now);
        return toModel({ ...row, status: rule.to, status_changed_at: now, status_reason: reason ?? null });
      })
      .immediate();
  }

  /**
   * The serving policy: a node's model is admitted when an approved manifest has its name, and —
   * when the node reports a sha256 digest — lists an artifact with that sha256.
   */
  isApproved(model: { id: string; digest?: string | undefined }): boolean {
    const sha256 = /^sha256:([0-9a-f]{64})$/i.exec(model.digest ?? "")?.[1]?.toLowerCase();
    const row =
      sha256 === undefined
        ? this.#db
            .prepare("SELECT 1 FROM registry_models WHERE name = ? AND status = 'approved' LIMIT 1")
            .get(model.id)
        : this.#db
            .prepare(
              `SELECT 1 FROM registry_models m JOIN registry_artifacts a ON a.name = m.name AND a.version = m.version
               WHERE m.name = ? AND m.status = 'approved' AND a.sha256 = ? LIMIT 1`,
            )
            .get(model.id, sha256);
    return row !== undefined;
  }

  #row(name: string, version: string): Row | undefined {
    return this.#db
      .prepare("SELECT * FROM registry_models WHERE name = ? AND version = ?")
      .get(name, version) as Row | undefined;
  }

  #event(name: string, version: string, status: RegistryStatus, reason: string | null, at: number): void {
    this.#db
      .prepare("INSERT INTO registry_events (name, version, status, reason, at) VALUES (?, ?, ?, ?, ?)")
      .run(name, version, status, reason, at);
  }
}

function toEntry(row: Row): RegistryEntry {
  return {
    name: row.name,
    version: row.version,
    publisher: row.publisher as `0x${string}`,
    manifestHash: row.manifest_hash as `0x${string}`,
    status: row.status,
    createdAt: row.created_at,
    submittedAt: new Date(row.submitted_at).toISOString(),
    statusChangedAt: new Date(row.status_changed_at).toISOString(),
    statusReason: row.status_reason,
    artifacts: row.artifact_count,
    sizeBytes: row.size_bytes,
  };
}

function toModel(row: Row): RegistryModel {
  return { ...toEntry(row), signed: JSON.parse(row.signed_json) as unknown };
}
