import { isGbtError } from "@gbt/protocol";
import { describe, expect, it } from "vitest";
import { confirmTransaction } from "./chain-confirm.js";

const codeOf = (promise: Promise<unknown>) =>
  promise.then(
    () => "sent",
    (error: unknown) => (isGbtError(error) ? error.code : error),
  );

describe("confirmTransaction", () => {
  it("sends with --yes, without asking", async () => {
    const asked: string[] = [];
    const prompt = async (q: string) => {
      asked.push(q);
      return "n";
    };
    expect(await codeOf(confirmTransaction("Stake 1 GBT", { yes: true, interactive: true, prompt }))).toBe(
      "sent",
    );
    expect(asked).toEqual([]);
  });

  it("refuses without a TTY and names --yes", async () => {
    const error = await confirmTransaction("Stake 1 GBT", { yes: false, interactive: false }).catch((e) => e);
    expect(error.code).toBe("MISSING_INPUT");
    expect(error.hint).toContain("--yes");
  });

  it("asks on a TTY: y sends, anything else cancels", async () => {
    expect(
      await codeOf(
        confirmTransaction("Stake 1 GBT", { yes: false, interactive: true, prompt: async () => "y" }),
      ),
    ).toBe("sent");
    expect(
      await codeOf(
        confirmTransaction("Stake 1 GBT", { yes: false, interactive: true, prompt: async () => "" }),
      ),
    ).toBe("INTERRUPTED");
  });
});
