/**
 * The Merkle tree of cumulative per-node earnings, built exactly as Settlement verifies it:
 * leaf = keccak256(keccak256(abi.encode(node, cumulative))), inner node = keccak256 of the sorted
 * pair (OpenZeppelin's MerkleProof), an odd node out moves up a level unchanged. Leaves are sorted
 * so that the same earnings always give the same root.
 */
import { GbtError } from "@gbt/protocol";
import { type Address, concat, encodeAbiParameters, getAddress, type Hex, keccak256 } from "viem";

export interface CumulativeEarning {
  node: Address;
  /** Everything the node has earned so far, in token wei. */
  cumulative: bigint;
}

export interface CumulativeTree {
  root: Hex;
  /** Sum of every cumulative amount (Settlement refuses a root above its funding). */
  total: bigint;
  entries: readonly (CumulativeEarning & { proof: Hex[] })[];
  /** The node's entry and proof, or undefined when it is not in the tree. */
  proofFor(node: Address): (CumulativeEarning & { proof: Hex[] }) | undefined;
}

export function cumulativeLeaf(node: Address, cumulative: bigint): Hex {
  return keccak256(
    keccak256(encodeAbiParameters([{ type: "address" }, { type: "uint256" }], [node, cumulative])),
  );
}

const hashPair = (a: Hex, b: Hex): Hex =>
  keccak256(a.toLowerCase() < b.toLowerCase() ? concat([a, b]) : concat([b, a]));

export function buildCumulativeTree(earnings: readonly CumulativeEarning[]): CumulativeTree {
  if (earnings.length === 0) {
    throw new GbtError("INVALID_INPUT", "A cumulative-earnings tree needs at least one node.");
  }
  const seen = new Set<string>();
  const leaves = earnings.map((earning) => {
    const node = getAddress(earning.node);
    if (seen.has(node)) throw new GbtError("INVALID_INPUT", `Node ${node} appears twice in the earnings.`);
    if (earning.cumulative < 0n) throw new GbtError("INVALID_INPUT", `Node ${node} has negative earnings.`);
    seen.add(node);
    return { node, cumulative: earning.cumulative, hash: cumulativeLeaf(node, earning.cumulative) };
  });
  leaves.sort((a, b) => (a.hash.toLowerCase() < b.hash.toLowerCase() ? -1 : 1));

  const layers: Hex[][] = [leaves.map((leaf) => leaf.hash)];
  for (let layer = layers[0] as Hex[]; layer.length > 1; ) {
    const next: Hex[] = [];
    for (let i = 0; i < layer.length; i += 2) {
      const left = layer[i] as Hex;
      const right = layer[i + 1];
      next.push(right === undefined ? left : hashPair(left, right));
    }
    layers.push(next);
    layer = next;
  }

  const entries = leaves.map((leaf, leafIndex) => {
    const proof: Hex[] = [];
    let index = leafIndex;
    for (const layer of layers.slice(0, -1)) {
      const sibling = layer[index ^ 1];
      if (sibling !== undefined) proof.push(sibling);
      index >>= 1;
    }
    return { node: leaf.node, cumulative: leaf.cumulative, proof };
  });
  const byNode = new Map(entries.map((entry) => [entry.node, entry]));
  return {
    root: (layers.at(-1) as Hex[])[0] as Hex,
    total: entries.reduce((sum, entry) => sum + entry.cumulative, 0n),
    entries,
    proofFor: (node) => byNode.get(getAddress(node)),
  };
}
