/**
 * What a request costs and what its provider earns, in integer micro-credits
 * (1 credit = 1_000_000 micro). Prices are configured in credits per million tokens, so a token
 * priced at P credits per million costs exactly P micro-credits: the cost is rounded up (the
 * consumer never pays less than the price) and the provider credit rounded down (the ledger
 * never pays out more than it took in).
 *
 * Decimal prices are not exact in binary floating point (0.29 × 100 = 28.999999999999996), so
 * a result within a trillionth (relative; at least 1e-9) of an integer is taken as that integer
 * before rounding: otherwise a price of 0.7 would bill 71 micro for 100 tokens instead of 70.
 */
import { GbtError } from "@gbt/protocol";
import { z } from "zod";

export const MICRO_PER_CREDIT = 1_000_000;

/** One model's price, in credits per million tokens. */
export const modelPriceSchema = z.strictObject({
  inputPerMillion: z.number().finite().min(0),
  outputPerMillion: z.number().finite().min(0),
});
export type ModelPrice = z.infer<typeof modelPriceSchema>;

/** Model name → price; the key `"*"` is the price of any model not listed. */
export const priceTableSchema = z.record(z.string().min(1).max(256), modelPriceSchema);
export type PriceTable = z.infer<typeof priceTableSchema>;

/** The multipliers applied to the provider's share of a request's debit. */
export interface PayoutMultipliers {
  /** The provider's share of the debit, in [0, 1]. */
  providerShare: number;
  /** The instance's ramp-up factor, in [0, 1]. */
  rampFactor: number;
  /** The anti-flapping switch penalty, in [0, 1]. */
  switchPenalty: number;
  /** A bonus for serving an under-supplied model, ≥ 1 (1 = none). The credit is still capped at the debit. */
  bounty: number;
  /** What the instance's reputation earns, in [0, 1] (default 1: no verification, no penalty). */
  reputation?: number;
}

/** The price of `model`: its own entry, else the `"*"` default; MODEL_NOT_FOUND when neither exists. */
export function priceFor(table: PriceTable, model: string): ModelPrice {
  if (Object.hasOwn(table, model)) return table[model] as ModelPrice;
  if (Object.hasOwn(table, "*")) return table["*"] as ModelPrice;
  throw new GbtError("MODEL_NOT_FOUND", `No price configured for model ${JSON.stringify(model)}.`, {
    details: { model },
    hint: 'Add the model, or a "*" default, to the gateway price table.',
  });
}

/** The cost of a request in micro-credits, rounded up to an integer. */
export function costMicro(price: ModelPrice, promptTokens: number, completionTokens: number): number {
  requireNonNegative("inputPerMillion", price.inputPerMillion);
  requireNonNegative("outputPerMillion", price.outputPerMillion);
  requireTokenCount("promptTokens", promptTokens);
  requireTokenCount("completionTokens", completionTokens);
  // P credits per million tokens × n tokens = P × n micro-credits.
  const micro = roundUp(promptTokens * price.inputPerMillion + completionTokens * price.outputPerMillion);
  if (!Number.isSafeInteger(micro)) {
    throw invalid(
      "cost",
      micro,
      "a cost below 2^53 micro-credits",
      "Check the price table for absurd prices.",
    );
  }
  return micro;
}

/**
 * The provider's credit for a request that debited `debitMicro`:
 * floor(debit × providerShare × rampFactor × switchPenalty × bounty × reputation), never above the debit.
 */
export function providerCreditMicro(debitMicro: number, multipliers: PayoutMultipliers): number {
  if (!(Number.isSafeInteger(debitMicro) && debitMicro >= 0)) {
    throw invalid("debitMicro", debitMicro, "an integer ≥ 0");
  }
  requireUnit("providerShare", multipliers.providerShare);
  requireUnit("rampFactor", multipliers.rampFactor);
  requireUnit("switchPenalty", multipliers.switchPenalty);
  if (!(Number.isFinite(multipliers.bounty) && multipliers.bounty >= 1)) {
    throw invalid("bounty", multipliers.bounty, "a finite number ≥ 1");
  }
  const reputation = multipliers.reputation ?? 1;
  requireUnit("reputation", reputation);
  const { providerShare, rampFactor, switchPenalty, bounty } = multipliers;
  const credit = roundDown(debitMicro * providerShare * rampFactor * switchPenalty * bounty * reputation);
  return Math.min(debitMicro, Math.max(0, credit));
}

/** Micro-credits as a decimal credit amount for messages ("5.000000"). */
export function formatCredits(micro: number): string {
  const sign = micro < 0 ? "-" : "";
  const abs = Math.abs(micro);
  const whole = Math.floor(abs / MICRO_PER_CREDIT);
  const fraction = String(abs % MICRO_PER_CREDIT).padStart(6, "0");
  return `${sign}${whole}.${fraction}`;
}

/** Ignores binary noise: a value within 1e-12 (relative, at least 1e-9) of an integer is that integer. */
function snap(value: number): number | undefined {
  const nearest = Math.round(value);
  return Math.abs(value - nearest) <= 1e-12 * Math.max(1_000, Math.abs(value)) ? nearest : undefined;
}

function roundUp(value: number): number {
  return snap(value) ?? Math.ceil(value);
}

function roundDown(value: number): number {
  return snap(value) ?? Math.floor(value);
}

function requireNonNegative(name: string, value: number): void {
  if (!(Number.isFinite(value) && value >= 0)) throw invalid(name, value, "a finite number ≥ 0");
}

function requireUnit(name: string, value: number): void {
  if (!(Number.isFinite(value) && value >= 0 && value <= 1)) throw invalid(name, value, "a number in [0, 1]");
}

function requireTokenCount(name: string, value: number): void {
  if (!(Number.isSafeInteger(value) && value >= 0)) throw invalid(name, value, "an integer ≥ 0");
}

function invalid(name: string, value: unknown, expected: string, hint?: string): GbtError {
  return new GbtError("INVALID_INPUT", `${name} must be ${expected}, got ${String(value)}.`, {
    details: { field: name, value: typeof value === "number" ? value : String(value), expected },
    ...(hint === undefined ? {} : { hint }),
  });
}
