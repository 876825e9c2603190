/**
 * What every model-registry call shares: registry calls are idempotent (a publish is keyed by
 * its content, a repeated status change answers unchanged), so network failures and 5xx are
 * retried; refusals read "The registry refused: …"; a registry answer may take a while to come.
 */
export const REGISTRY_CALL = { retry: true, refusedBy: "registry", timeoutMs: 30_000 } as const;
