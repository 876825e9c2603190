// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";

/// A four-leaf cumulative-earnings tree built the way the TypeScript builder and the contract
/// expect: double-hashed leaves, sorted-pair inner nodes.
library Merkle4 {
    function leaf(address node, uint256 cumulative) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(node, cumulative))));
    }

    function root(bytes32[4] memory leaves) internal pure returns (bytes32) {
        return Hashes.commutativeKeccak256(
            Hashes.commutativeKeccak256(leaves[0], leaves[1]), Hashes.commutativeKeccak256(leaves[2], leaves[3])
        );
    }

    function proof(bytes32[4] memory leaves, uint256 index) internal pure returns (bytes32[] memory p) {
        p = new bytes32[](2);
        p[0] = leaves[index ^ 1];
        p[1] = index < 2
            ? Hashes.commutativeKeccak256(leaves[2], leaves[3])
            : Hashes.commutativeKeccak256(leaves[0], leaves[1]);
    }
}
