import { hashTypedData, toHex } from "viem";
import { describe, expect, it } from "vitest";
import { type Kind, kindNames, kinds } from "./objects.js";
import { gbtDomain } from "./signed-object.js";
import { typedDigest } from "./typed-digest.js";

/** A valid-looking value for each EIP-712 type, varied by `seed`. */
function sample(type: string, seed: number): unknown {
  if (type === "string") return `text-${seed}-ünïcödé`;
  if (type === "address") return `0x${(seed * 7919).toString(16).padStart(40, "0")}`;
  if (type === "bytes32") return `0x${(seed * 104729).toString(16).padStart(64, "f")}`;
  if (type === "uint16") return seed % 65_536;
  if (type === "uint32") return (seed * 2_654_435_761) % 2 ** 32;
  if (type === "uint64") return Number.MAX_SAFE_INTEGER - seed;
  throw new Error(type);
}

describe("typedDigest", () => {
  it("equals viem's hashTypedData for every kind, with and without a verifying contract", () => {
    for (const kind of kindNames as Kind[]) {
      const fields = kinds[kind].fields as readonly { name: string; type: string }[];
      for (const seed of [1, 2, 99]) {
        const message = Object.fromEntries(fields.map((f) => [f.name, sample(f.type, seed)]));
        for (const domain of [
          gbtDomain(31_337),
          gbtDomain(8453, "0x00000000000000000000000000000000000000aa"),
        ]) {
          const expected = hashTypedData({
            domain,
            types: { [kind]: fields as { name: string; type: string }[] },
            primaryType: kind,
            message: Object.fromEntries(
              fields.map((f) => [
                f.name,
                f.type.startsWith("uint") ? BigInt(message[f.name] as number) : message[f.name],
              ]),
            ),
          } as never);
          expect(toHex(typedDigest(kind, domain, message))).toBe(expected);
        }
      }
    }
  });

  it("changes when any field changes", () => {
    const fields = kinds.UsageReceipt.fields as readonly { name: string; type: string }[];
    const message = Object.fromEntries(fields.map((f) => [f.name, sample(f.type, 5)]));
    const base = toHex(typedDigest("UsageReceipt", gbtDomain(1), message));
    for (const field of fields) {
      const changed = { ...message, [field.name]: sample(field.type, 6) };
      expect(toHex(typedDigest("UsageReceipt", gbtDomain(1), changed))).not.toBe(base);
    }
    expect(toHex(typedDigest("UsageReceipt", gbtDomain(2), message))).not.toBe(base);
  });
});
