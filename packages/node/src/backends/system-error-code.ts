/** Finds the system error code (ECONNREFUSED, ETIMEDOUT…) that fetch and the clients bury in cause chains. */

/** The system error code somewhere in an error's cause chain (or inside an AggregateError), if any. */
export function systemErrorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return code;
    if (current instanceof AggregateError) {
      const inner = current.errors.map(systemErrorCode).find((found) => found !== undefined);
      if (inner) return inner;
    }
    current = current.cause;
  }
  return undefined;
}
