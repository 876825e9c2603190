import { isGbtError } from "@gbt/protocol";
import { getAddress } from "viem";
import { describe, expect, it } from "vitest";
import { buildCumulativeTree, cumulativeLeaf } from "./cumulative-merkle-tree.js";

const node = (i: number) => getAddress(`0x${i.toString(16).padStart(40, "0")}`);

describe("buildCumulativeTree", () => {
  it("gives the same root whatever the order of the earnings", () => {
    const earnings = [1, 2, 3, 4, 5, 6, 7].map((i) => ({
      node: node(i),
      cumulative: BigInt(i) * 10n ** 15n,
    }));
    const a = buildCumulativeTree(earnings);
    const b = buildCumulativeTree([...earnings].reverse());
    expect(a.root).toBe(b.root);
    expect(a.total).toBe(28n * 10n ** 15n);
  });

  it("makes a single node's leaf the root, with an empty proof", () => {
    const tree = buildCumulativeTree([{ node: node(9), cumulative: 5n }]);
    expect(tree.root).toBe(cumulativeLeaf(node(9), 5n));
    expect(tree.proofFor(node(9))?.proof).toEqual([]);
  });

  it("changes the root when any cumulative amount changes", () => {
    const base = [1, 2, 3].map((i) => ({ node: node(i), cumulative: 100n }));
    const bumped = base.map((e, i) => (i === 2 ? { ...e, cumulative: 101n } : e));
    expect(buildCumulativeTree(base).root).not.toBe(buildCumulativeTree(bumped).root);
  });

  it("refuses an empty tree and a node listed twice", () => {
    const error = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return isGbtError(e) ? e.code : e;
      }
      return undefined;
    };
    expect(error(() => buildCumulativeTree([]))).toBe("INVALID_INPUT");
    expect(
      error(() =>
        buildCumulativeTree([
          { node: node(1), cumulative: 1n },
          { node: node(1).toLowerCase() as `0x${string}`, cumulative: 2n },
        ]),
      ),
    ).toBe("INVALID_INPUT");
  });
});
