import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { openNodeDatabase } from "../node-database.js";
import { ApiKeyStore } from "./api-keys.js";

async function store() {
  const dir = await mkdtemp(join(tmpdir(), "gbt-keys-"));
  const path = join(dir, "node.db");
  return { keys: new ApiKeyStore(openNodeDatabase(path)), path };
}

describe("ApiKeyStore", () => {
  it("creates keys that verify, stores only their hash, and revokes them", async () => {
    const { keys, path } = await store();
    const created = keys.create("laptop");
    expect(created.key).toMatch(/^gbt_sk_[\w-]{32}$/);
    expect(keys.verify(created.key)).toBe(true);
    expect(keys.verify(`${created.key}x`)).toBe(false);
    expect(keys.verify("gbt_sk_guess")).toBe(false);

    const raw = new Database(path, { readonly: true });
    const dump = JSON.stringify(raw.prepare("SELECT * FROM api_keys").all());
    raw.close();
    expect(dump).not.toContain(created.key);

    expect(keys.revoke(created.prefix).revokedAt).not.toBeNull();
    expect(keys.verify(created.key)).toBe(false);
    expect(keys.list()).toHaveLength(1);
  });

  it("refuses unknown and ambiguous revocations and bad names", async () => {
    const { keys } = await store();
    expect(() => keys.revoke("nope")).toThrow(expect.objectContaining({ code: "NOT_FOUND" }));
    keys.create("a");
    keys.create("b");
    expect(() => keys.revoke("gbt_sk_")).toThrow(expect.objectContaining({ code: "INVALID_INPUT" }));
    expect(() => keys.create("bad\nname")).toThrow(expect.objectContaining({ code: "INVALID_INPUT" }));
  });
});
