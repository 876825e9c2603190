/**
 * Signature recovery (and digest signing) on libsecp256k1 (the `secp256k1` package: a prebuilt native binding, with a
 * pure-JS fallback where none loads). About 15× faster than the pure-JS recovery, which is what
 * lets one gateway core verify thousands of usage receipts per second, and keeps each signed
 * heartbeat from blocking the event loop for milliseconds.
 */
import secp256k1 from "secp256k1";
import { type Address, getAddress, type Hex, hexToBytes, keccak256, toHex } from "viem";
import type { RecoverSigner } from "./signed-object.js";

/** Recovers the signer of a 65-byte r‖s‖v signature over a 32-byte digest; throws on a malformed one. */
export const recoverSignerNative: RecoverSigner = (digest: Uint8Array, signature: Hex): Address => {
  const bytes = hexToBytes(signature);
  if (bytes.length !== 65) throw new Error("signature must be 65 bytes");
  const v = bytes[64] as number;
  const recovery = v >= 27 ? v - 27 : v;
  if (recovery !== 0 && recovery !== 1) throw new Error("signature has an invalid recovery id");
  const publicKey = secp256k1.ecdsaRecover(bytes.subarray(0, 64), recovery, digest, false);
  return getAddress(toHex(keccak256(publicKey.subarray(1), "bytes").subarray(12)));
};

/**
 * Signs a 32-byte digest on libsecp256k1: RFC 6979 deterministic, low-s, so the 65-byte r‖s‖v
 * signature is byte-identical to viem's `account.sign({ hash })`, about 6× faster.
 */
export function digestSignerNative(privateKey: Hex): (digest: Uint8Array) => Hex {
  const key = hexToBytes(privateKey);
  return (digest) => {
    const { signature, recid } = secp256k1.ecdsaSign(digest, key);
    const out = new Uint8Array(65);
    out.set(signature, 0);
    out[64] = 27 + recid;
    return toHex(out);
  };
}
