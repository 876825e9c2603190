/**
 * The line of chat completions waiting for capacity when every candidate of their model is at
 * capacity, bounded in length (`routing.maxQueued`) and in time (`routing.queueTimeoutMs`).
 */

/**
 * Requests waiting for a slot when every candidate is at capacity. A finished request wakes the
 * longest waiting one; every waiter also looks again every 250 ms (a parked node's probe time or a
 * cooldown can free capacity without a request finishing), until its deadline.
 */
export class CapacityQueue {
  readonly #waiters: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  /** Resolves true when it is worth trying again, false once the deadline passed or the line is full. */
  wait(deadline: number): Promise<boolean> {
    const left = deadline - performance.now();
    if (left <= 0 || this.#waiters.length >= this.limit) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(
        () => {
          const at = this.#waiters.indexOf(wake);
          if (at >= 0) this.#waiters.splice(at, 1);
          resolve(performance.now() < deadline);
        },
        Math.min(left, 250),
      );
      this.#waiters.push(wake);
    });
  }

  freed(): void {
    this.#waiters.shift()?.();
  }
}
