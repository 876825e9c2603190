/**
 * Signing and verifying protocol objects as EIP-712 typed data under the gbt domain.
 * Verification checks, cheapest first, each failure with its own error code: shape
 * (INVALID_OBJECT), domain (WRONG_DOMAIN), chain (WRONG_CHAIN), time window (EXPIRED,
 * NOT_YET_VALID), audience (WRONG_AUDIENCE), signature (SIGNATURE_INVALID), payload binding
 * (PAYLOAD_HASH_MISMATCH: hashed only under a valid signature) and finally who signed (UNKNOWN_SIGNER).
 */
import {
  type Address,
  type Hex,
  isAddressEqual,
  type LocalAccount,
  recoverAddress,
  type TypedDataDomain,
  toHex,
} from "viem";
import { z } from "zod";
import { hashPayload } from "./canonical-json.js";
import { GbtError } from "./errors.js";
import { type Kind, kindNames, kinds, type MessageInput, type MessageOf, SCHEMA_VERSION } from "./objects.js";
import { address, chainId as chainIdSchema, signature as signatureSchema } from "./primitives.js";
import { typedDigest } from "./typed-digest.js";

/**
 * Recovers the address that signed a 32-byte digest. The default is viem's (pure JS); a verifier
 * under load can pass a native one (the gateway uses libsecp256k1 for its receipts).
 */
export type RecoverSigner = (digest: Uint8Array, signature: Hex) => Address | Promise<Address>;

const recoverWithViem: RecoverSigner = (digest, signature) =>
  recoverAddress({ hash: toHex(digest), signature });

export const DOMAIN_NAME = "gbt";
export const DOMAIN_VERSION = "1";

export interface GbtDomain {
  name: string;
  version: string;
  chainId: number;
  verifyingContract?: Address;
}

/** The gbt EIP-712 domain for a chain (and, where a contract checks signatures, its address). */
export function gbtDomain(chainId: number, verifyingContract?: Address): GbtDomain {
  return {
    name: DOMAIN_NAME,
    version: DOMAIN_VERSION,
    chainId,
    ...(verifyingContract ? { verifyingContract } : {}),
  };
}

const domainSchema = z.strictObject({
  name: z.string().max(32),
  version: z.string().max(16),
  chainId: chainIdSchema,
  verifyingContract: address.optional(),
});

/** A signed protocol object as it travels on the wire (JSON). */
export interface SignedObject<K extends Kind = Kind> {
  kind: K;
  domain: GbtDomain;
  message: MessageOf<K>;
  /** Free-form JSON bound by the kind's hash field; absent when the kind carries none. */
  payload?: unknown;
  signature: Hex;
}

type PayloadField<K extends Kind> = (typeof kinds)[K] extends { payloadHashField: infer F extends string }
  ? F
  : never;

/** What a caller provides to sign: the message without its version and payload hash (computed here). */
export type SignInput<K extends Kind> = Omit<MessageInput<K>, "schemaVersion" | PayloadField<K>> & {
  schemaVersion?: number;
} & Partial<Pick<MessageInput<K>, PayloadField<K> & keyof MessageInput<K>>>;

export interface SignObjectParameters<K extends Kind> {
  kind: K;
  chainId: number;
  verifyingContract?: Address;
  message: SignInput<K>;
  payload?: unknown;
}

function typedDataOf(kind: Kind, domain: GbtDomain, message: Record<string, unknown>) {
  const fields = kinds[kind].fields;
  const typed: Record<string, unknown> = {};
  for (const field of fields) {
    const value = message[field.name];
    typed[field.name] =
      field.type.startsWith("uint") || field.type.startsWith("int") ? BigInt(value as number) : value;
  }
  return {
    domain: domain as TypedDataDomain,
    types: { [kind]: fields as unknown as { name: string; type: string }[] },
    primaryType: kind,
    message: typed,
  };
}

function invalidObject(kind: string, error: z.ZodError): GbtError {
  const issue = error.issues[0];
  const path = issue ? issue.path.join(".") : "";
  return new GbtError(
    "INVALID_OBJECT",
    `Invalid ${kind}: ${path ? `${path}: ` : ""}${issue?.message ?? "malformed"}.`,
    {
      details: {
        kind,
        issues: error.issues.slice(0, 5).map((i) => ({ path: i.path.join("."), message: i.message })),
      },
    },
  );
}

function parseMessage<K extends Kind>(kind: K, message: unknown): MessageOf<K> {
  const parsed = kinds[kind].message.safeParse(message);
  if (!parsed.success) throw invalidObject(kind, parsed.error);
  return parsed.data as MessageOf<K>;
}

/** Signs a protocol object with `account`; fills in `schemaVersion` and the payload hash. */
export async function signObject<K extends Kind>(
  account: LocalAccount,
  parameters: SignObjectParameters<K>,
): Promise<SignedObject<K>> {
  const { kind, chainId, verifyingContract, payload } = parameters;
  const definition = kinds[kind] as { payloadHashField?: string; signerField: string };
  const draft: Record<string, unknown> = { schemaVersion: SCHEMA_VERSION, ...parameters.message };
  if (definition.payloadHashField && draft[definition.payloadHashField] === undefined) {
    draft[definition.payloadHashField] = hashPayload(payload ?? null);
  }
  const message = parseMessage(kind, draft);
  const signer = (message as Record<string, unknown>)[definition.signerField] as Address;
  if (!isAddressEqual(signer, account.address)) {
    throw new GbtError(
      "SIGNER_MISMATCH",
      `The ${kind}'s ${definition.signerField} is not the signing key's address.`,
      {
        details: { expected: signer, key: account.address },
      },
    );
  }
  const domain = gbtDomain(chainId, verifyingContract);
  const signature = await account.signTypedData(
    typedDataOf(kind, domain, message as Record<string, unknown>) as never,
  );
  return {
    kind,
    domain,
    message,
    ...(definition.payloadHashField ? { payload: payload ?? null } : {}),
    signature,
  };
}

export interface VerifyObjectOptions<K extends Kind> {
  kind: K;
  chainId: number;
  verifyingContract?: Address;
  /** Addresses allowed to have signed; when absent any signer is accepted (the claimed one is still proven). */
  allowedSigners?: readonly Address[];
  /** The party this object must be meant for (checked against the kind's audience field). */
  audience?: Address;
  /** Clock in milliseconds. */
  now?: () => number;
  /** Accepted clock skew in seconds (default 30). */
  skewSeconds?: number;
  /** For objects carrying only a timestamp: the oldest accepted age in seconds. */
  maxAgeSeconds?: number;
  /** Signature recovery (default: viem's). */
  recoverSigner?: RecoverSigner;
}

const envelopeSchema = z.strictObject({
  kind: z.enum(kindNames as [Kind, ...Kind[]]),
  domain: domainSchema,
  message: z.record(z.string(), z.unknown()),
  payload: z.unknown().optional(),
  signature: signatureSchema,
});

/** Verifies a signed object received from anywhere; returns it parsed, or throws a GbtError naming the failed check. */
export async function verifyObject<K extends Kind>(
  value: unknown,
  options: VerifyObjectOptions<K>,
): Promise<SignedObject<K>> {
  const { kind } = options;
  const signed = parseEnvelope(value, kind);
  const { domain } = signed;
  if (domain.name !== DOMAIN_NAME || domain.version !== DOMAIN_VERSION) {
    throw new GbtError(
      "WRONG_DOMAIN",
      `The ${kind} was signed for another domain (${domain.name} v${domain.version}).`,
      {
        details: {
          expected: { name: DOMAIN_NAME, version: DOMAIN_VERSION },
          actual: { name: domain.name, version: domain.version },
        },
      },
    );
  }
  if (domain.chainId !== options.chainId) {
    throw new GbtError(
      "WRONG_CHAIN",
      `The ${kind} was signed for chain ${domain.chainId}, not ${options.chainId}.`,
      {
        details: { expected: options.chainId, actual: domain.chainId },
      },
    );
  }
  const expectedContract = options.verifyingContract;
  if (
    (expectedContract === undefined) !== (domain.verifyingContract === undefined) ||
    (expectedContract &&
      domain.verifyingContract &&
      !isAddressEqual(expectedContract, domain.verifyingContract))
  ) {
    throw new GbtError("WRONG_DOMAIN", `The ${kind} was signed for another verifying contract.`, {
      details: { expected: expectedContract ?? null, actual: domain.verifyingContract ?? null },
    });
  }
  const message = parseMessage(kind, signed.message) as Record<string, unknown>;
  checkWindow(kind, message, options);
  const definition = kinds[kind] as {
    payloadHashField?: string;
    audienceField?: string;
    signerField: string;
  };
  if (options.audience && definition.audienceField) {
    const audience = message[definition.audienceField] as Address;
    if (!isAddressEqual(audience, options.audience)) {
      throw new GbtError("WRONG_AUDIENCE", `The ${kind} is meant for ${audience}, not ${options.audience}.`, {
        details: { expected: options.audience, actual: audience },
      });
    }
  }
  // The signature before the payload: an unsigned object must not make the verifier hash a megabyte.
  const claimed = await checkSignature(kind, domain, message, signed.signature, options.recoverSigner);
  if (definition.payloadHashField) {
    const bound = message[definition.payloadHashField];
    let actual: Hex;
    try {
      actual = hashPayload(signed.payload ?? null);
    } catch (cause) {
      throw new GbtError("PAYLOAD_HASH_MISMATCH", `The ${kind}'s payload cannot be hashed.`, { cause });
    }
    if (actual !== bound) {
      throw new GbtError(
        "PAYLOAD_HASH_MISMATCH",
        `The ${kind}'s payload does not match its ${definition.payloadHashField}.`,
        {
          details: { expected: bound, actual },
        },
      );
    }
  }
  if (options.allowedSigners && !options.allowedSigners.some((allowed) => isAddressEqual(allowed, claimed))) {
    throw new GbtError(
      "UNKNOWN_SIGNER",
      `The ${kind} is signed by ${claimed}, who is not allowed to sign it here.`,
      {
        details: { signer: claimed },
      },
    );
  }
  return { ...signed, kind, domain, message } as SignedObject<K>;
}

/** The envelope of a signed `kind` (its message still unparsed); INVALID_OBJECT otherwise. */
function parseEnvelope(value: unknown, kind: Kind): z.infer<typeof envelopeSchema> {
  const envelope = envelopeSchema.safeParse(value);
  if (!envelope.success) throw invalidObject(kind, envelope.error);
  if (envelope.data.kind !== kind) {
    throw new GbtError("INVALID_OBJECT", `Expected a signed ${kind}, got a ${envelope.data.kind}.`, {
      details: { expected: kind, actual: envelope.data.kind },
    });
  }
  return envelope.data;
}

/** The signer a parsed message names, once its canonical signature is proven to recover to it; SIGNATURE_INVALID otherwise. */
async function checkSignature(
  kind: Kind,
  domain: GbtDomain,
  message: Record<string, unknown>,
  signature: Hex,
  recoverSigner: RecoverSigner = recoverWithViem,
): Promise<Address> {
  const claimed = message[(kinds[kind] as { signerField: string }).signerField] as Address;
  const malleated = nonCanonical(signature);
  if (malleated !== null) {
    throw new GbtError("SIGNATURE_INVALID", `The ${kind}'s signature is not canonical (${malleated}).`, {
      hint: "gbt signs with low-s and v of 27 or 28; a signature changed into its twin is refused.",
    });
  }
  let recovered: Address;
  try {
    recovered = await recoverSigner(typedDigest(kind, domain, message), signature);
  } catch (cause) {
    throw new GbtError("SIGNATURE_INVALID", `The ${kind}'s signature is malformed.`, { cause });
  }
  if (!isAddressEqual(recovered, claimed)) {
    throw new GbtError(
      "SIGNATURE_INVALID",
      `The ${kind}'s signature does not match its contents (altered or forged).`,
      {
        details: { claimedSigner: claimed },
      },
    );
  }
  return claimed;
}

/** Parses a signed object's shape (envelope and message schema) without checking anything it claims. */
export function parseSignedObject<K extends Kind>(value: unknown, kind: K): SignedObject<K> {
  const envelope = parseEnvelope(value, kind);
  return { ...envelope, kind, message: parseMessage(kind, envelope.message) } as SignedObject<K>;
}

/**
 * Who signed a received object, when that much is proven: its shape parses and its canonical
 * signature recovers to the signer it names. Null otherwise. Nothing else (chain, window,
 * audience, payload, allowed signers) is checked: this tells an authenticated sender, whatever
 * else is wrong with the object, from anyone who merely wrote a signer's address into it.
 */
export async function authenticatedSigner(
  value: unknown,
  options: { kind: Kind; recoverSigner?: RecoverSigner },
): Promise<Address | null> {
  try {
    const signed = parseSignedObject(value, options.kind);
    return await checkSignature(
      options.kind,
      signed.domain,
      signed.message as Record<string, unknown>,
      signed.signature,
      options.recoverSigner,
    );
  } catch (error) {
    if (error instanceof GbtError) return null;
    throw error;
  }
}

function checkWindow(kind: Kind, message: Record<string, unknown>, options: VerifyObjectOptions<Kind>): void {
  const nowSeconds = Math.floor((options.now ?? Date.now)() / 1000);
  const skew = options.skewSeconds ?? 30;
  const { expiresAt, notBefore, issuedAt, createdAt } = message as Record<string, number | undefined>;
  const start = notBefore ?? issuedAt ?? createdAt;
  if (expiresAt !== undefined && start !== undefined && expiresAt <= start) {
    throw new GbtError("INVALID_OBJECT", `The ${kind} expires before it becomes valid.`, {
      details: { start, expiresAt },
    });
  }
  if (expiresAt !== undefined && nowSeconds > expiresAt + skew) {
    throw new GbtError("EXPIRED", `The ${kind} expired at ${new Date(expiresAt * 1000).toISOString()}.`, {
      details: { expiresAt, now: nowSeconds },
      hint: "Create and sign a fresh one.",
    });
  }
  if (start !== undefined && start > nowSeconds + skew) {
    throw new GbtError(
      "NOT_YET_VALID",
      `The ${kind} is not valid before ${new Date(start * 1000).toISOString()}.`,
      {
        details: { validFrom: start, now: nowSeconds },
        hint: "Check the clocks of both machines.",
      },
    );
  }
  const stamp = issuedAt ?? createdAt;
  if (
    options.maxAgeSeconds !== undefined &&
    stamp !== undefined &&
    nowSeconds - stamp > options.maxAgeSeconds + skew
  ) {
    throw new GbtError("EXPIRED", `The ${kind} is older than ${options.maxAgeSeconds} s.`, {
      details: { issuedAt: stamp, now: nowSeconds },
    });
  }
}

/** The EIP-712 digest of a signed object: a stable id for replay stores and result binding. */
export function digestOf(signed: SignedObject): Hex {
  return toHex(typedDigest(signed.kind, signed.domain, signed.message as Record<string, unknown>));
}

/** secp256k1's group order, and half of it: a canonical signature has s ≤ n/2. */
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const SECP256K1_HALF_N = SECP256K1_N >> 1n;

/**
 * Why a 65-byte r‖s‖v signature is not in canonical form, or null when it is. Every signature has a
 * twin (n − s with the other v) that recovers the same signer: only the low-s one with v ∈ {27, 28}
 * is accepted, so a signed object has exactly one valid encoding.
 */
export function nonCanonical(signature: Hex): string | null {
  if (!/^0x[0-9a-fA-F]{130}$/.test(signature)) return "not 65 bytes";
  const r = BigInt(`0x${signature.slice(2, 66)}`);
  const s = BigInt(`0x${signature.slice(66, 130)}`);
  const v = Number.parseInt(signature.slice(130, 132), 16);
  if (v !== 27 && v !== 28) return `v is ${v}, not 27 or 28`;
  if (r === 0n || r >= SECP256K1_N) return "r out of range";
  if (s === 0n || s > SECP256K1_HALF_N) return "high s";
  return null;
}
