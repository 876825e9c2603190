import { toHex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { digestSignerNative, recoverSignerNative } from "./native-recover.js";
import { gbtDomain, signObject, verifyObject } from "./signed-object.js";
import { typedDigest } from "./typed-digest.js";

describe("recoverSignerNative", () => {
  it("recovers the same signer as viem, and another one from a tampered signature", async () => {
    for (let i = 0; i < 5; i++) {
      const account = privateKeyToAccount(generatePrivateKey());
      const gateway = privateKeyToAccount(generatePrivateKey()).address;
      const now = Math.floor(Date.now() / 1000);
      const signed = await signObject(account, {
        kind: "UsageReceipt",
        chainId: 31_337,
        message: {
          requestId: `gw-${i}`,
          node: account.address,
          gateway,
          model: "m",
          promptTokens: 3,
          completionTokens: 7,
          ttftMs: 1,
          durationMs: 2,
          issuedAt: now,
          expiresAt: now + 60,
        },
        payload: { stream: true, finishReason: "stop", backend: null },
      });
      const digest = typedDigest("UsageReceipt", gbtDomain(31_337), signed.message);
      expect(recoverSignerNative(digest, signed.signature)).toBe(account.address);
      const options = { kind: "UsageReceipt" as const, chainId: 31_337, allowedSigners: [account.address] };
      await expect(
        verifyObject(signed, { ...options, recoverSigner: recoverSignerNative }),
      ).resolves.toBeTruthy();
      const flipped =
        `${signed.signature.slice(0, 10)}${signed.signature[10] === "0" ? "1" : "0"}${signed.signature.slice(11)}` as const;
      await expect(
        verifyObject({ ...signed, signature: flipped }, { ...options, recoverSigner: recoverSignerNative }),
      ).rejects.toMatchObject({ code: "SIGNATURE_INVALID" });
    }
  });

  it("refuses malformed signatures", () => {
    expect(() => recoverSignerNative(new Uint8Array(32), "0x1234")).toThrow(/65 bytes/);
    expect(() => recoverSignerNative(new Uint8Array(32), `0x${"11".repeat(64)}05`)).toThrow(/recovery id/);
  });
});

describe("digestSignerNative", () => {
  it("signs byte-identically to viem (RFC 6979, low-s, v = 27/28)", async () => {
    for (let i = 0; i < 10; i++) {
      const key = generatePrivateKey();
      const account = privateKeyToAccount(key);
      const digest = typedDigest("UsageReceipt", gbtDomain(i + 1), {
        schemaVersion: 1,
        requestId: `r${i}`,
        node: account.address,
        gateway: account.address,
        model: "m",
        promptTokens: i,
        completionTokens: i,
        ttftMs: 0,
        durationMs: 0,
        timingsHash: `0x${"00".repeat(32)}`,
        issuedAt: 1,
        expiresAt: 2,
      });
      const native = digestSignerNative(key)(digest);
      expect(native).toBe(await account.sign({ hash: toHex(digest) }));
      expect(recoverSignerNative(digest, native)).toBe(account.address);
    }
  });
});
