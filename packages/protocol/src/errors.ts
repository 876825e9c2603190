/**
 * The one error type of gbt. Every failure a user can fix carries a stable code, a short message,
 * optional details, a next step, and the exit code of its class; anything else is a bug (exit 1).
 */

/** Exit codes, stable across releases and documented in the README. */
export const ExitCode = {
  ok: 0,
  bug: 1,
  usage: 2,
  config: 3,
  auth: 4,
  unreachable: 5,
  validation: 6,
  funds: 7,
  notFound: 8,
  conflict: 9,
  threshold: 10,
  io: 11,
  /** An explicitly requested GPU backend (`--gpu cuda|vulkan|metal`) cannot run here. */
  gpu: 12,
  interrupted: 130,
} as const;
export type ExitCodeName = keyof typeof ExitCode;

/** Every error code gbt emits, with the exit-code class it belongs to. */
export const errorCodes = {
  INTERNAL: "bug",
  USAGE: "usage",
  MISSING_INPUT: "usage",
  CONFIG_INVALID: "config",
  CONFIG_UNREADABLE: "config",
  KEYSTORE_INVALID: "config",
  KEYSTORE_MISSING: "config",
  NOT_SET_UP: "config",
  WRONG_PASSPHRASE: "auth",
  PASSPHRASE_REQUIRED: "auth",
  SIGNATURE_INVALID: "auth",
  SIGNER_MISMATCH: "auth",
  UNKNOWN_SIGNER: "auth",
  WRONG_DOMAIN: "auth",
  WRONG_CHAIN: "auth",
  WRONG_AUDIENCE: "auth",
  EXPIRED: "auth",
  NOT_YET_VALID: "auth",
  REPLAYED: "auth",
  STALE_NONCE: "auth",
  AUDIT_TAMPERED: "auth",
  PAYLOAD_HASH_MISMATCH: "auth",
  INVALID_PROOF: "auth",
  UNAUTHORIZED: "auth",
  BACKEND_UNREACHABLE: "unreachable",
  GATEWAY_UNREACHABLE: "unreachable",
  NODE_UNREACHABLE: "unreachable",
  CHAIN_UNREACHABLE: "unreachable",
  BUSY: "unreachable",
  SOURCE_UNREACHABLE: "unreachable",
  INVALID_INPUT: "validation",
  INVALID_ADDRESS: "validation",
  INVALID_KEY: "validation",
  INVALID_OBJECT: "validation",
  MANIFEST_INVALID: "validation",
  ARTIFACT_MISMATCH: "validation",
  UNKNOWN_JOB_TYPE: "validation",
  INVALID_PARAMS: "validation",
  POLICY_DENIED: "validation",
  /** The node has no owner yet: claim it (`gbt owner claim CODE`) before it joins a pool. */
  CLAIM_REQUIRED: "validation",
  PREFLIGHT_FAILED: "validation",
  CONTEXT_LENGTH_EXCEEDED: "validation",
  INSUFFICIENT_FUNDS: "funds",
  NOTHING_TO_CLAIM: "funds",
  NOT_FOUND: "notFound",
  MODEL_NOT_FOUND: "notFound",
  ALREADY_EXISTS: "conflict",
  CONFLICT: "conflict",
  UNBONDING_NOT_FINISHED: "conflict",
  TRANSACTION_REVERTED: "conflict",
  BELOW_THRESHOLD: "threshold",
  NOT_WRITABLE: "io",
  IO_ERROR: "io",
  GPU_UNAVAILABLE: "gpu",
  INTERRUPTED: "interrupted",
} as const satisfies Record<string, ExitCodeName>;
export type ErrorCode = keyof typeof errorCodes;

export interface GbtErrorOptions {
  /** Structured facts about the failure (file, field, expected/actual…). Never secrets. */
  details?: Record<string, unknown>;
  /** What the user should do next. */
  hint?: string;
  cause?: unknown;
}

export class GbtError extends Error {
  override readonly name = "GbtError";
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: GbtErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
    this.hint = options.hint;
  }

  /** The process exit code of this error's class. */
  get exitCode(): number {
    return ExitCode[errorCodes[this.code]];
  }

  /** The `{code, message, details?, hint?}` body used by `--json` output and HTTP error bodies. */
  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown>; hint?: string } {
    return {
      code: this.code,
      message: this.message,
      ...(this.details === undefined ? {} : { details: this.details }),
      ...(this.hint === undefined ? {} : { hint: this.hint }),
    };
  }
}

export function isGbtError(value: unknown, code?: ErrorCode): value is GbtError {
  return value instanceof GbtError && (code === undefined || value.code === code);
}
