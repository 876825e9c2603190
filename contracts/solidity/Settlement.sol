// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title Batched payouts for delivered work.
/// @notice Each epoch the settler posts the Merkle root of every node's *cumulative* earnings.
/// A claim proves (node, cumulative) against the latest root and pays cumulative minus what the
/// node was already paid, so a claim can never pay twice and a missed epoch is never lost.
/// Leaves are keccak256(bytes.concat(keccak256(abi.encode(node, cumulative)))): the double hash
/// keeps a leaf from being confused with an inner node (OpenZeppelin's recommendation).
contract Settlement is AccessControl {
    using SafeERC20 for IERC20;

    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");

    IERC20 public immutable token;
    uint64 public currentEpoch;
    bytes32 public currentRoot;
    /// Sum of all cumulative earnings in the current root; never above `totalFunded`.
    uint256 public currentTotal;
    uint256 public totalFunded;
    uint256 public totalPaid;
    mapping(uint64 epoch => bytes32) public epochRoots;
    mapping(address node => uint256) public paidSoFar;

    event Funded(address indexed from, uint256 amount);
    event RootPosted(uint64 indexed epoch, bytes32 root, uint256 totalCumulative);
    event Claimed(address indexed node, uint256 cumulative, uint256 amount);

    error ZeroAmount();
    error EpochNotAfter(uint64 current, uint64 posted);
    error TotalDecreased(uint256 current, uint256 posted);
    error Underfunded(uint256 funded, uint256 required);
    error NoRoot();
    error InvalidProof();
    error NothingToClaim(uint256 cumulative, uint256 paid);

    constructor(IERC20 token_, address governance, address settler) {
        token = token_;
        _grantRole(DEFAULT_ADMIN_ROLE, governance);
        _grantRole(SETTLER_ROLE, settler);
    }

    /// Moves `amount` from the caller (the rewards pool) into the contract's funding.
    function fund(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        totalFunded += amount;
        token.safeTransferFrom(msg.sender, address(this), amount);
        emit Funded(msg.sender, amount);
    }

    /// Posts the root of epoch `epoch`. Epochs only move forward and cumulative totals only
    /// grow; a root that owes more than was ever funded is refused up front.
    function postRoot(uint64 epoch, bytes32 root, uint256 totalCumulative) external onlyRole(SETTLER_ROLE) {
        if (epoch <= currentEpoch) revert EpochNotAfter(currentEpoch, epoch);
        if (totalCumulative < currentTotal) revert TotalDecreased(currentTotal, totalCumulative);
        if (totalCumulative > totalFunded) revert Underfunded(totalFunded, totalCumulative);
        currentEpoch = epoch;
        currentRoot = root;
        currentTotal = totalCumulative;
        epochRoots[epoch] = root;
        emit RootPosted(epoch, root, totalCumulative);
    }

    /// Pays `node` its cumulative earnings minus what it was already paid. Anyone may submit
    /// the claim; the tokens always go to the node.
    function claim(address node, uint256 cumulative, bytes32[] calldata proof) external returns (uint256 amount) {
        if (currentRoot == bytes32(0)) revert NoRoot();
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(node, cumulative))));
        if (!MerkleProof.verifyCalldata(proof, currentRoot, leaf)) revert InvalidProof();
        uint256 paid = paidSoFar[node];
        if (cumulative <= paid) revert NothingToClaim(cumulative, paid);
        amount = cumulative - paid;
        if (totalPaid + amount > totalFunded) revert Underfunded(totalFunded, totalPaid + amount);
        paidSoFar[node] = cumulative;
        totalPaid += amount;
        token.safeTransfer(node, amount);
        emit Claimed(node, cumulative, amount);
    }

    /// What a claim of `cumulative` would pay `node` now (0 when nothing is owed).
    function claimable(address node, uint256 cumulative) external view returns (uint256) {
        uint256 paid = paidSoFar[node];
        return cumulative > paid ? cumulative - paid : 0;
    }
}
