import { mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isGbtError } from "./errors.js";
import { openSecret, readSecretBox, sealSecret, writeSecretBox } from "./secret-box.js";

const SECRET = "sk-live-0123456789abcdef";

describe("secret box", () => {
  it("seals with a passphrase (scrypt + AES-256-GCM), writes 0600, and opens only with that passphrase", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gbt-secret-"));
    const path = join(dir, "key.json");
    await writeSecretBox(path, await sealSecret(SECRET, "backend API key", "pass"));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const text = await readFile(path, "utf8");
    expect(text).not.toContain(SECRET);
    const box = await readSecretBox(path);
    expect(box.encrypted).toBe(true);
    expect(await openSecret(box, "pass")).toBe(SECRET);
    const wrong = await openSecret(box, "other").catch((e: unknown) => e);
    expect(isGbtError(wrong, "WRONG_PASSPHRASE")).toBe(true);
    const none = await openSecret(box).catch((e: unknown) => e);
    expect(isGbtError(none, "PASSPHRASE_REQUIRED")).toBe(true);
    expect(String((wrong as Error).message) + String((none as Error).message)).not.toContain(SECRET);
  });

  it("a box whose label was changed does not open (the label is authenticated)", async () => {
    const box = await sealSecret(SECRET, "backend API key", "pass");
    const relabelled = { ...box, label: "something else" };
    const error = await openSecret(relabelled, "pass").catch((e: unknown) => e);
    expect(isGbtError(error, "WRONG_PASSPHRASE")).toBe(true);
  });

  it("without a passphrase it stores the secret plain (the file is still 0600)", async () => {
    const box = await sealSecret(SECRET, "backend API key");
    expect(box).toMatchObject({ encrypted: false, secret: SECRET });
    expect(await openSecret(box)).toBe(SECRET);
  });

  it("a malformed file is a config error naming the file, not its content", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gbt-secret-"));
    const path = join(dir, "key.json");
    await writeFile(path, JSON.stringify({ format: "gbt-secret", version: 1, secret: SECRET }));
    const error = await readSecretBox(path).catch((e: unknown) => e);
    expect(isGbtError(error, "CONFIG_INVALID")).toBe(true);
    expect(JSON.stringify(error) + (error as Error).message).not.toContain(SECRET);
  });
});
