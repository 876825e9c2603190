/**
 * Shared plumbing of the routing options: defaults merged over partial options, validated once,
 * with errors that name the option. Resolved option objects are frozen and remembered so that
 * thousands of per-instance breakers and health windows can share one without re-validating.
 */
import { GbtError } from "@gbt/protocol";

const resolvedObjects = new WeakSet<object>();

/** Marks an options object as resolved (defaults filled in, validated) and freezes it. */
export function markResolved<T extends object>(options: T): Readonly<T> {
  const frozen = Object.freeze(options);
  resolvedObjects.add(frozen);
  return frozen;
}

export function isResolved(options: object): boolean {
  return resolvedObjects.has(options);
}

/** Drops keys whose value is undefined so that spreading options keeps the defaults. */
export function stripUndefined<T extends object>(options: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined) (out as Record<string, unknown>)[key] = value;
  }
  return out;
}

export function requireNumber(
  name: string,
  value: number,
  min: number,
  max = Number.POSITIVE_INFINITY,
): void {
  if (!(Number.isFinite(value) && value >= min && value <= max)) {
    const expected =
      max === Number.POSITIVE_INFINITY ? `a finite number ≥ ${min}` : `a number in [${min}, ${max}]`;
    throw invalidRoutingOption(name, value, expected);
  }
}

export function invalidRoutingOption(name: string, value: unknown, expected: string): GbtError {
  return new GbtError("CONFIG_INVALID", `Routing option ${name} is ${String(value)}; expected ${expected}.`, {
    details: { option: name, value, expected },
    hint: `Fix ${name} in the gateway routing configuration.`,
  });
}
