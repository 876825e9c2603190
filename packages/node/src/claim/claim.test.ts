import { mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HttpError, signObject } from "@gbt/protocol";
import { resolvePaths } from "@gbt/store";
import type { Address, LocalAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { loadConfig, saveConfig } from "../config.js";
import { applyClaim, verifyNodeClaim } from "./claim.js";
import { signNodeClaim } from "./claim-client.js";
import {
  CLAIM_CODE_ALPHABET,
  claimFilePath,
  ensureClaimCode,
  newClaimCode,
  normalizeClaimCode,
  readClaimCode,
} from "./claim-code.js";

const CHAIN = 31337;
const T0 = 1_800_000_000_000;
const now = () => T0;
const owner = privateKeyToAccount(generatePrivateKey());
const node = privateKeyToAccount(generatePrivateKey()).address;
const otherNode = privateKeyToAccount(generatePrivateKey()).address;

async function claimFor(
  account: LocalAccount,
  fields: { node?: Address; code?: string; issuedAt?: number; expiresAt?: number; chainId?: number } = {},
) {
  const issuedAt = fields.issuedAt ?? T0 / 1000;
  return signObject(account, {
    kind: "NodeClaim",
    chainId: fields.chainId ?? CHAIN,
    message: {
      node: fields.node ?? node,
      owner: account.address,
      code: fields.code ?? "GBT-N7K4",
      issuedAt,
      expiresAt: fields.expiresAt ?? issuedAt + 600,
    },
  });
}

async function refusal(
  promise: Promise<unknown>,
): Promise<{ status: number; wireCode: string; message: string }> {
  const error = await promise.then(
    () => {
      throw new Error("expected a refusal");
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(HttpError);
  const http = error as HttpError;
  return { status: http.status, wireCode: http.wireCode, message: http.message };
}

const options = { node, code: "GBT-N7K4", chainId: CHAIN, now };

describe("verifyNodeClaim (hostile first)", () => {
  it("refuses a claim signed for another node, naming both", async () => {
    const r = await refusal(verifyNodeClaim(await claimFor(owner, { node: otherNode }), options));
    expect(r).toMatchObject({ status: 400, wireCode: "claim_wrong_node" });
    expect(r.message).toContain(otherNode);
    expect(r.message).toContain(node);
  });

  it("refuses another code, an expired claim, one not yet valid, another chain and an over-long window", async () => {
    expect(
      await refusal(verifyNodeClaim(await claimFor(owner, { code: "GBT-AAAA" }), options)),
    ).toMatchObject({
      status: 400,
      wireCode: "claim_wrong_code",
    });
    const expired = await claimFor(owner, { issuedAt: T0 / 1000 - 1200, expiresAt: T0 / 1000 - 600 });
    expect(await refusal(verifyNodeClaim(expired, options))).toMatchObject({
      status: 401,
      wireCode: "claim_expired",
    });
    const future = await claimFor(owner, { issuedAt: T0 / 1000 + 3600 });
    expect(await refusal(verifyNodeClaim(future, options))).toMatchObject({
      wireCode: "claim_not_yet_valid",
    });
    expect(await refusal(verifyNodeClaim(await claimFor(owner, { chainId: 1 }), options))).toMatchObject({
      wireCode: "claim_wrong_chain",
    });
    const long = await claimFor(owner, { expiresAt: T0 / 1000 + 86_400 });
    expect(await refusal(verifyNodeClaim(long, options))).toMatchObject({ wireCode: "claim_too_long_lived" });
  });

  it("refuses a tampered claim: owner swapped, code swapped, signature malleated", async () => {
    const good = await claimFor(owner);
    const thief = privateKeyToAccount(generatePrivateKey()).address;
    const swapped = { ...good, message: { ...good.message, owner: thief } };
    expect(await refusal(verifyNodeClaim(swapped, options))).toMatchObject({
      status: 401,
      wireCode: "claim_signature_invalid",
    });
    const recoded = { ...good, message: { ...good.message, code: "GBT-ZZZZ" } };
    expect(await refusal(verifyNodeClaim(recoded, { ...options, code: "GBT-ZZZZ" }))).toMatchObject({
      wireCode: "claim_signature_invalid",
    });
    // The twin signature (n − s, other v) recovers the same key but is not canonical.
    const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    const s = BigInt(`0x${good.signature.slice(66, 130)}`);
    const v = Number.parseInt(good.signature.slice(130), 16);
    const twin = `${good.signature.slice(0, 66)}${(n - s).toString(16).padStart(64, "0")}${(v === 27 ? 28 : 27).toString(16)}`;
    expect(await refusal(verifyNodeClaim({ ...good, signature: twin }, options))).toMatchObject({
      wireCode: "claim_signature_invalid",
    });
  });

  it("refuses what is not a NodeClaim: other kinds, junk, extra fields", async () => {
    for (const junk of [null, "GBT-N7K4", { kind: "NodeClaim" }, { ...(await claimFor(owner)), extra: 1 }]) {
      expect((await refusal(verifyNodeClaim(junk, options))).wireCode).toBe("claim_invalid");
    }
    const registration = { ...(await claimFor(owner)), kind: "Job" };
    expect((await refusal(verifyNodeClaim(registration, options))).status).toBe(400);
  });

  it("accepts a good claim and returns its owner; signNodeClaim makes one", async () => {
    expect(await verifyNodeClaim(await claimFor(owner), options)).toBe(owner.address);
    const signed = await signNodeClaim(owner, { node, code: "gbt-n7k4", chainId: CHAIN, now });
    expect(signed.message.code).toBe("GBT-N7K4");
    expect(signed.message.expiresAt - signed.message.issuedAt).toBe(600);
    expect(await verifyNodeClaim(signed, options)).toBe(owner.address);
  });
});

async function nodeHome() {
  const paths = resolvePaths({ GBT_HOME: await mkdtemp(join(tmpdir(), "gbt-claim-")) });
  await saveConfig(paths.configFile, {
    version: 1,
    node: { address: node, mode: "local", chainId: CHAIN, owners: [] },
    backend: { kind: "embedded" },
  });
  return paths;
}

describe("claim codes", () => {
  it("are GBT- and four Crockford characters, from the RNG without bias", () => {
    for (let i = 0; i < 200; i++) {
      const code = newClaimCode();
      expect(code).toMatch(/^GBT-[0-9A-HJKMNP-TV-Z]{4}$/);
    }
    expect(newClaimCode(() => new Uint8Array([0, 31, 32, 255]))).toBe("GBT-0Z0Z");
    expect(CLAIM_CODE_ALPHABET).not.toMatch(/[ILOU]/);
  });

  it("reads typed codes the Crockford way and refuses junk", () => {
    expect(normalizeClaimCode(" gbt-n7k4 ")).toBe("GBT-N7K4");
    expect(normalizeClaimCode("GBT-O1LI")).toBe("GBT-0111");
    expect(normalizeClaimCode("n7k4")).toBe("GBT-N7K4");
    for (const junk of ["", "GBT-", "GBT-AB", "GBT-ÄÄÄÄ", "GBT-UUUU", "GBT-123456789", "<script>"]) {
      expect(normalizeClaimCode(junk)).toBeNull();
    }
  });

  it("persist across restarts (0600), and a corrupt claim.json is replaced, not fatal", async () => {
    const paths = await nodeHome();
    expect(await readClaimCode(paths)).toBeUndefined();
    const code = await ensureClaimCode(paths);
    expect(await ensureClaimCode(paths)).toBe(code);
    expect(await readClaimCode(paths)).toBe(code);
    expect((await stat(claimFilePath(paths))).mode & 0o777).toBe(0o600);
    for (const bad of ["{not json", JSON.stringify({ version: 1, code: "GBT-IIII", createdAt: 1 }), "null"]) {
      await writeFile(claimFilePath(paths), bad);
      const reasons: string[] = [];
      expect(await readClaimCode(paths)).toBeUndefined();
      const fresh = await ensureClaimCode(paths, { onReplaced: (reason) => reasons.push(reason) });
      expect(fresh).toMatch(/^GBT-/);
      expect(reasons).toHaveLength(1);
      expect(await readClaimCode(paths)).toBe(fresh);
    }
  });
});

describe("applyClaim", () => {
  it("records the owner atomically and rotates the code, so the same claim never works again", async () => {
    const paths = await nodeHome();
    const code = await ensureClaimCode(paths);
    const signed = await claimFor(owner, { code });
    const first = await verifyNodeClaim(signed, { ...options, code });
    expect(await applyClaim(paths, first)).toEqual([owner.address]);
    expect((await loadConfig(paths.configFile)).node.owners).toEqual([owner.address]);
    const next = await readClaimCode(paths);
    expect(next).toMatch(/^GBT-/);
    expect(next).not.toBe(code);
    // Replay after the rotation: the old code is refused.
    const replay = await refusal(verifyNodeClaim(signed, { ...options, code: next as string }));
    expect(replay.wireCode).toBe("claim_wrong_code");
    // Adding the same owner twice changes nothing; nothing half-written is left behind.
    await applyClaim(paths, owner.address);
    expect((await loadConfig(paths.configFile)).node.owners).toEqual([owner.address]);
    expect(JSON.parse(await readFile(paths.configFile, "utf8")).node.owners).toEqual([owner.address]);
  });
});
