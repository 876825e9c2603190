import { describe, expect, it } from "vitest";
import {
  costMicro,
  formatCredits,
  type PayoutMultipliers,
  priceFor,
  priceTableSchema,
  providerCreditMicro,
} from "./pricing.js";

const full: PayoutMultipliers = { providerShare: 1, rampFactor: 1, switchPenalty: 1, bounty: 1 };

describe("priceTableSchema and priceFor", () => {
  const table = priceTableSchema.parse({
    "llama3.2:3b": { inputPerMillion: 0.1, outputPerMillion: 0.4 },
    "*": { inputPerMillion: 1, outputPerMillion: 2 },
  });

  it("prefers the model's own price, then the default", () => {
    expect(priceFor(table, "llama3.2:3b")).toEqual({ inputPerMillion: 0.1, outputPerMillion: 0.4 });
    expect(priceFor(table, "qwen3:8b")).toEqual({ inputPerMillion: 1, outputPerMillion: 2 });
  });

  it("refuses a model with no price and no default, even one named like an Object property", () => {
    const strict = priceTableSchema.parse({ a: { inputPerMillion: 1, outputPerMillion: 1 } });
    for (const model of ["b", "constructor", "__proto__", "toString"]) {
      expect(() => priceFor(strict, model)).toThrow(
        expect.objectContaining({
          code: "MODEL_NOT_FOUND",
          message: expect.stringMatching(/no price configured/i),
        }),
      );
    }
  });

  it("rejects negative, non-finite, missing and extra price fields", () => {
    for (const bad of [
      { m: { inputPerMillion: -1, outputPerMillion: 1 } },
      { m: { inputPerMillion: Number.NaN, outputPerMillion: 1 } },
      { m: { inputPerMillion: Number.POSITIVE_INFINITY, outputPerMillion: 1 } },
      { m: { inputPerMillion: 1 } },
      { m: { inputPerMillion: 1, outputPerMillion: 1, extra: 1 } },
      { "": { inputPerMillion: 1, outputPerMillion: 1 } },
    ]) {
      expect(priceTableSchema.safeParse(bad).success).toBe(false);
    }
  });
});

describe("costMicro", () => {
  it("charges P micro-credits per token at P credits per million, rounded up", () => {
    expect(costMicro({ inputPerMillion: 1, outputPerMillion: 2 }, 1_000_000, 1_000_000)).toBe(3_000_000);
    expect(costMicro({ inputPerMillion: 0.5, outputPerMillion: 0 }, 3, 0)).toBe(2); // 1.5 → 2
    expect(costMicro({ inputPerMillion: 0.001, outputPerMillion: 0 }, 1, 0)).toBe(1); // any use costs ≥ 1 micro
    expect(costMicro({ inputPerMillion: 1, outputPerMillion: 1 }, 0, 0)).toBe(0);
    expect(costMicro({ inputPerMillion: 0, outputPerMillion: 0 }, 500, 500)).toBe(0);
  });

  it("does not round binary noise up into an extra micro-credit", () => {
    expect(1.1 * 100).not.toBe(110); // 110.00000000000001
    expect(costMicro({ inputPerMillion: 1.1, outputPerMillion: 0 }, 100, 0)).toBe(110);
    expect(costMicro({ inputPerMillion: 0.07, outputPerMillion: 0 }, 100, 0)).toBe(7);
    expect(costMicro({ inputPerMillion: 0.1, outputPerMillion: 0.2 }, 3, 3)).toBe(1); // 0.9000000000000001 → 1
    expect(costMicro({ inputPerMillion: 1.1, outputPerMillion: 0 }, 101, 0)).toBe(112); // 111.1 → 112
    expect(costMicro({ inputPerMillion: 0.1, outputPerMillion: 0.2 }, 10, 10)).toBe(3);
    expect(costMicro({ inputPerMillion: 0.29, outputPerMillion: 0 }, 100, 0)).toBe(29);
  });

  it("rejects token counts and prices that are not usable numbers", () => {
    const price = { inputPerMillion: 1, outputPerMillion: 1 };
    for (const [p, c] of [
      [-1, 0],
      [0.5, 0],
      [Number.NaN, 0],
      [0, Number.POSITIVE_INFINITY],
    ] as const) {
      expect(() => costMicro(price, p, c)).toThrow(expect.objectContaining({ code: "INVALID_INPUT" }));
    }
    expect(() => costMicro({ inputPerMillion: -1, outputPerMillion: 1 }, 1, 1)).toThrow(/inputPerMillion/);
    expect(() => costMicro({ inputPerMillion: 1e300, outputPerMillion: 1 }, 1e6, 1)).toThrow(/2\^53/);
  });
});

describe("providerCreditMicro", () => {
  it("multiplies the debit by every factor and rounds down", () => {
    expect(providerCreditMicro(1_000, { ...full, providerShare: 0.8 })).toBe(800);
    expect(providerCreditMicro(999, { ...full, providerShare: 0.8 })).toBe(799); // 799.2
    expect(
      providerCreditMicro(1_000, { providerShare: 0.8, rampFactor: 0.25, switchPenalty: 0.5, bounty: 1 }),
    ).toBe(100);
    expect(providerCreditMicro(100, { ...full, providerShare: 0.29 })).toBe(29); // not 28.999…
    expect(providerCreditMicro(100, { ...full, providerShare: 0.57 })).toBe(57); // not 56.999…
    expect(providerCreditMicro(1, { ...full, providerShare: 0.99 })).toBe(0);
    expect(providerCreditMicro(0, full)).toBe(0);
    // A node whose reputation earns half pays out half; without the factor, nothing changes.
    expect(providerCreditMicro(1_000, { ...full, providerShare: 0.8, reputation: 0.5 })).toBe(400);
    expect(providerCreditMicro(1_000, { ...full, providerShare: 0.8, reputation: 1 })).toBe(800);
  });

  it("never pays more than the debit, however large the bounty", () => {
    expect(providerCreditMicro(1_000, { ...full, providerShare: 0.8, bounty: 1.5 })).toBe(1_000);
    expect(providerCreditMicro(1_000, { ...full, providerShare: 0.5, bounty: 1.5 })).toBe(750);
    expect(providerCreditMicro(Number.MAX_SAFE_INTEGER, { ...full, bounty: 1e6 })).toBe(
      Number.MAX_SAFE_INTEGER,
    );
  });

  it("rejects factors out of range and bad debits", () => {
    const bad: [number, Partial<PayoutMultipliers>, RegExp][] = [
      [-1, {}, /debitMicro/],
      [1.5, {}, /debitMicro/],
      [Number.NaN, {}, /debitMicro/],
      [10, { providerShare: 1.01 }, /providerShare/],
      [10, { providerShare: -0.1 }, /providerShare/],
      [10, { rampFactor: Number.NaN }, /rampFactor/],
      [10, { switchPenalty: 2 }, /switchPenalty/],
      [10, { bounty: 0.5 }, /bounty/],
      [10, { reputation: 1.2 }, /reputation/],
      [10, { reputation: -0.5 }, /reputation/],
      [10, { bounty: Number.POSITIVE_INFINITY }, /bounty/],
    ];
    for (const [debit, override, message] of bad) {
      expect(() => providerCreditMicro(debit, { ...full, ...override })).toThrow(message);
    }
  });
});

describe("formatCredits", () => {
  it("prints micro-credits as credits with six decimals", () => {
    expect(formatCredits(5_000_000)).toBe("5.000000");
    expect(formatCredits(1)).toBe("0.000001");
    expect(formatCredits(-1_500_000)).toBe("-1.500000");
  });
});
