import { mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createKeystore, parsePrivateKey, readKeystore, unlockKeystore, writeKeystore } from "./keystore.js";

const key = `0x${"5a".repeat(32)}` as const;

describe("keystore", () => {
  it("writes an unencrypted keystore with mode 0600 and reads it back", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gbt-ks-"));
    const path = join(dir, "keys", "node.json");
    const file = await createKeystore(key);
    await writeKeystore(path, file);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const account = await unlockKeystore(await readKeystore(path));
    expect(account.address).toBe(file.address);
  });

  it("encrypts with a passphrase: the key is not in the file, the right passphrase unlocks it", async () => {
    const file = await createKeystore(key, "correct horse");
    expect(JSON.stringify(file)).not.toContain(key.slice(2));
    const account = await unlockKeystore(file, "correct horse");
    expect(account.address).toBe(file.address);
  });

  it("a wrong or missing passphrase is an auth error", async () => {
    const file = await createKeystore(key, "correct horse");
    await expect(unlockKeystore(file, "wrong")).rejects.toMatchObject({ code: "WRONG_PASSPHRASE" });
    await expect(unlockKeystore(file)).rejects.toMatchObject({ code: "PASSPHRASE_REQUIRED" });
  });

  it("detects a keystore whose address was swapped", async () => {
    const file = await createKeystore(key, "pw");
    const swapped = { ...file, address: "0x000000000000000000000000000000000000dEaD" as const };
    await expect(unlockKeystore(swapped, "pw")).rejects.toMatchObject({ code: "WRONG_PASSPHRASE" });
  });

  it("names the malformed field of a corrupt keystore", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gbt-ks-"));
    const path = join(dir, "node.json");
    await writeFile(path, "{not json");
    await expect(readKeystore(path)).rejects.toMatchObject({ code: "KEYSTORE_INVALID" });
    const file = await createKeystore(key);
    await writeFile(path, JSON.stringify({ ...file, privateKey: "0x12" }));
    await expect(readKeystore(path)).rejects.toThrow(/privateKey/);
    await expect(readKeystore(join(dir, "none.json"))).rejects.toMatchObject({ code: "KEYSTORE_MISSING" });
  });

  it("parses user-supplied keys and refuses garbage without echoing it", () => {
    expect(parsePrivateKey(`  ${key.slice(2).toUpperCase()}\n`, "the key file")).toBe(key);
    expect(() => parsePrivateKey("0x1234", "GBT_NODE_KEY")).toThrow(/GBT_NODE_KEY does not hold/);
    expect(() => parsePrivateKey(`0x${"0".repeat(64)}`, "x")).toThrow();
    try {
      parsePrivateKey("secretsecret", "x");
    } catch (error) {
      expect(String((error as Error).message)).not.toContain("secretsecret");
    }
  });

  it("does not leave the original file half-written: the file on disk stays valid JSON", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gbt-ks-"));
    const path = join(dir, "node.json");
    await writeKeystore(path, await createKeystore(key));
    await writeKeystore(path, await createKeystore(key, "pw"));
    expect(JSON.parse(await readFile(path, "utf8")).encrypted).toBe(true);
  });
});
