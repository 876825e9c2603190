/**
 * Request scopes of an HTTP backend: each request gets its own AbortSignal that follows the
 * caller's (a consumer who disconnects aborts its generation) and that the backend's close()
 * aborts with every other request in flight. Releasing a scope detaches it from the caller's
 * signal, so finished requests leave no listeners behind.
 */

export interface AbortScope {
  signal: AbortSignal;
  release(): void;
}

export interface AbortScopes {
  /** A scope for one request, aborted when `parent` aborts or when abortAll() runs. */
  open(parent?: AbortSignal): AbortScope;
  /** Aborts every open scope (the backend is closing). */
  abortAll(reason: Error): void;
}

export function createAbortScopes(): AbortScopes {
  const open = new Set<AbortController>();
  return {
    open(parent) {
      const controller = new AbortController();
      const onAbort = () => controller.abort(parent?.reason);
      if (parent?.aborted) controller.abort(parent.reason);
      else parent?.addEventListener("abort", onAbort, { once: true });
      open.add(controller);
      return {
        signal: controller.signal,
        release() {
          parent?.removeEventListener("abort", onAbort);
          open.delete(controller);
        },
      };
    },
    abortAll(reason) {
      for (const controller of open) controller.abort(reason);
    },
  };
}
