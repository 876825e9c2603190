/**
 * EIP-712 digests of gbt objects, computed directly from the kind's field list: the type hash and
 * the domain separator are computed once and cached, and each field is encoded straight into one
 * buffer. Same bytes as viem's `hashTypedData` (a test checks every kind), several times faster,
 * which matters where the gateway verifies thousands of usage receipts per second.
 */
import { type Hex, hexToBytes, keccak256, toBytes } from "viem";
import { type Kind, kinds } from "./objects.js";
import type { GbtDomain } from "./signed-object.js";

const typeHashes = new Map<Kind, Uint8Array>();
const domainSeparators = new Map<string, Uint8Array>();

const keccak = (bytes: Uint8Array): Uint8Array => keccak256(bytes, "bytes");

function typeHashOf(kind: Kind): Uint8Array {
  let hash = typeHashes.get(kind);
  if (hash === undefined) {
    const fields = kinds[kind].fields as readonly { name: string; type: string }[];
    hash = keccak(toBytes(`${kind}(${fields.map((f) => `${f.type} ${f.name}`).join(",")})`));
    typeHashes.set(kind, hash);
  }
  return hash;
}

/** The domain separator (EIP712Domain with the fields the domain has, in EIP-712 order). */
export function domainSeparator(domain: GbtDomain): Uint8Array {
  const key = `${domain.name}\u0000${domain.version}\u0000${domain.chainId}\u0000${domain.verifyingContract ?? ""}`;
  let separator = domainSeparators.get(key);
  if (separator === undefined) {
    const contract = domain.verifyingContract;
    const type = `EIP712Domain(string name,string version,uint256 chainId${contract ? ",address verifyingContract" : ""})`;
    const words = [
      keccak(toBytes(type)),
      keccak(toBytes(domain.name)),
      keccak(toBytes(domain.version)),
      uintWord(domain.chainId),
    ];
    if (contract) words.push(addressWord(contract));
    separator = keccak(concat(words));
    if (domainSeparators.size > 1024) domainSeparators.clear();
    domainSeparators.set(key, separator);
  }
  return separator;
}

/** keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(message)) for a parsed message of `kind`. */
export function typedDigest(kind: Kind, domain: GbtDomain, message: Record<string, unknown>): Uint8Array {
  const fields = kinds[kind].fields as readonly { name: string; type: string }[];
  const struct = new Uint8Array(32 * (fields.length + 1));
  struct.set(typeHashOf(kind), 0);
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i] as { name: string; type: string };
    struct.set(encodeField(field.type, message[field.name]), 32 * (i + 1));
  }
  const out = new Uint8Array(66);
  out[0] = 0x19;
  out[1] = 0x01;
  out.set(domainSeparator(domain), 2);
  out.set(keccak(struct), 34);
  return keccak(out);
}

function encodeField(type: string, value: unknown): Uint8Array {
  if (type === "string") return keccak(toBytes(value as string));
  if (type === "address") return addressWord(value as Hex);
  if (type === "bytes32") return hexToBytes(value as Hex);
  if (type.startsWith("uint")) return uintWord(value as number);
  throw new Error(`typedDigest: unsupported EIP-712 type ${type}`);
}

function uintWord(value: number | bigint): Uint8Array {
  const word = new Uint8Array(32);
  let rest = BigInt(value);
  for (let i = 31; i >= 0 && rest > 0n; i--) {
    word[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return word;
}

function addressWord(address: Hex): Uint8Array {
  const word = new Uint8Array(32);
  word.set(hexToBytes(address), 12);
  return word;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
