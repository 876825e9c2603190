/**
 * Per-resource locks: jobs that touch the same resource ("config", "node"…) run one after another,
 * jobs on different resources run in parallel. A lock is the tail of a promise chain per resource.
 */

export type WithResourceLock = <T>(resource: string, task: () => Promise<T>) => Promise<T>;

/** A map of async mutexes keyed by resource name; an idle resource holds no memory. */
export function createResourceLocks(): WithResourceLock {
  const tails = new Map<string, Promise<void>>();
  return async <T>(resource: string, task: () => Promise<T>): Promise<T> => {
    const previous = tails.get(resource) ?? Promise.resolve();
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => held);
    tails.set(resource, tail);
    await previous;
    try {
      return await task();
    } finally {
      release();
      if (tails.get(resource) === tail) tails.delete(resource);
    }
  };
}
