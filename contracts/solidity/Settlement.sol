// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title Batched payouts for delivered work.
/// @notice Each epoch the settler posts the Merkle root of every node's *cumulative* earnings.
/// A claim proves (node, cumulative) against the effective root and pays cumulative minus what the
/// node was already paid, so a claim can never pay twice and a missed epoch is never lost.
/// Leaves are keccak256(bytes.concat(keccak256(abi.encode(node, cumulative)))): the double hash
/// keeps a leaf from being confused with an inner node (OpenZeppelin's recommendation).
///
/// The settler is a hot key (the gateway's), so a posted root does not pay at once: it is
/// *pending* for `rootDelay` seconds, during which claims keep verifying against the previous
/// effective root and governance (DEFAULT_ADMIN_ROLE) can cancel or replace it. The settler
/// cannot touch a pending root: a stolen settler key can neither hurry its own root nor undo
/// governance's correction. One root is pending at a time, and each adds at most
/// `maxEpochLiability` to the effective total, so new debt grows by at most that bound per delay.
/// A pending root takes effect by time alone (no transaction), at `effectiveAt`.
contract Settlement is AccessControl {
    using SafeERC20 for IERC20;

    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");
    /// The longest delay governance may set: claims can be held back, never frozen.
    uint64 public constant MAX_ROOT_DELAY = 30 days;

    /// A posted root. `effectiveAt` is when claims start verifying against it.
    struct Root {
        uint64 epoch;
        uint64 effectiveAt;
        bytes32 root;
        /// Sum of all cumulative earnings in the root; never above `totalFunded`.
        uint256 total;
    }

    IERC20 public immutable token;
    uint256 public totalFunded;
    uint256 public totalPaid;
    /// Seconds between a root's posting and the time it takes effect.
    uint64 public rootDelay;
    /// The most a root may add to the effective total (new liability per epoch).
    uint256 public maxEpochLiability;
    mapping(address node => uint256) public paidSoFar;

    /// The last root known to be in effect; `_pending` may have taken effect since (see `_effective`).
    Root internal _settled;
    /// The root waiting for its delay; `root == 0` when there is none.
    Root internal _pending;

    event Funded(address indexed from, uint256 amount);
    event RootPosted(uint64 indexed epoch, bytes32 root, uint256 totalCumulative, uint64 effectiveAt);
    event RootReplaced(
        uint64 indexed epoch, bytes32 previousRoot, bytes32 root, uint256 totalCumulative, uint64 effectiveAt
    );
    event RootCancelled(uint64 indexed epoch, bytes32 root);
    event RootDelaySet(uint64 previous, uint64 delay);
    event MaxEpochLiabilitySet(uint256 previous, uint256 bound);
    event Claimed(address indexed node, uint256 cumulative, uint256 amount);

    error ZeroAmount();
    error EmptyRoot();
    error EpochNotAfter(uint64 current, uint64 posted);
    error TotalDecreased(uint256 current, uint256 posted);
    error Underfunded(uint256 funded, uint256 required);
    error LiabilityAboveBound(uint256 increase, uint256 bound);
    error RootPending(uint64 epoch, uint64 effectiveAt);
    error NoPendingRoot();
    error DelayTooLong(uint64 delay, uint64 max);
    error NoRoot();
    error RootNotYetEffective(uint64 epoch, uint64 effectiveAt);
    error InvalidProof();
    error NothingToClaim(uint256 cumulative, uint256 paid);

    constructor(IERC20 token_, address governance, address settler, uint64 rootDelay_, uint256 maxEpochLiability_) {
        token = token_;
        _grantRole(DEFAULT_ADMIN_ROLE, governance);
        _grantRole(SETTLER_ROLE, settler);
        _setRootDelay(rootDelay_);
        _setMaxEpochLiability(maxEpochLiability_);
    }

    /// Moves `amount` from the caller (the rewards pool) into the contract's funding.
    function fund(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        totalFunded += amount;
        token.safeTransferFrom(msg.sender, address(this), amount);
        emit Funded(msg.sender, amount);
    }

    /// Posts the root of epoch `epoch`; it takes effect `rootDelay` seconds from now. Epochs only
    /// move forward, cumulative totals only grow, by at most `maxEpochLiability`, and a root that
    /// owes more than was ever funded is refused up front. RootPending while another still waits.
    function postRoot(uint64 epoch, bytes32 root, uint256 totalCumulative) external onlyRole(SETTLER_ROLE) {
        _promoteDue();
        if (_pending.root != bytes32(0)) revert RootPending(_pending.epoch, _pending.effectiveAt);
        if (epoch <= _settled.epoch) revert EpochNotAfter(_settled.epoch, epoch);
        _checkRoot(root, totalCumulative);
        uint64 effectiveAt = uint64(block.timestamp) + rootDelay;
        _pending = Root({epoch: epoch, effectiveAt: effectiveAt, root: root, total: totalCumulative});
        emit RootPosted(epoch, root, totalCumulative, effectiveAt);
    }

    /// Governance swaps the waiting root for a corrected one of the same epoch; the delay starts over.
    function replacePendingRoot(bytes32 root, uint256 totalCumulative) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireWaiting();
        _checkRoot(root, totalCumulative);
        bytes32 previous = _pending.root;
        uint64 effectiveAt = uint64(block.timestamp) + rootDelay;
        _pending.root = root;
        _pending.total = totalCumulative;
        _pending.effectiveAt = effectiveAt;
        emit RootReplaced(_pending.epoch, previous, root, totalCumulative, effectiveAt);
    }

    /// Governance drops the waiting root: it never pays, and the settler may post that epoch again.
    function cancelPendingRoot() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireWaiting();
        emit RootCancelled(_pending.epoch, _pending.root);
        delete _pending;
    }

    /// Sets the delay of roots posted from now on (a waiting root keeps its `effectiveAt`).
    function setRootDelay(uint64 delay) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setRootDelay(delay);
    }

    function setMaxEpochLiability(uint256 bound) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setMaxEpochLiability(bound);
    }

    /// Pays `node` its cumulative earnings minus what it was already paid, against the effective
    /// root. Anyone may submit the claim; the tokens always go to the node. A proof of the root
    /// that still waits is refused with RootNotYetEffective, naming when to try again.
    function claim(address node, uint256 cumulative, bytes32[] calldata proof) external returns (uint256 amount) {
        Root memory effective = _effective();
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(node, cumulative))));
        if (effective.root == bytes32(0) || !MerkleProof.verifyCalldata(proof, effective.root, leaf)) {
            Root memory waiting = _waiting();
            if (waiting.root != bytes32(0) && MerkleProof.verifyCalldata(proof, waiting.root, leaf)) {
                revert RootNotYetEffective(waiting.epoch, waiting.effectiveAt);
            }
            if (effective.root == bytes32(0)) revert NoRoot();
            revert InvalidProof();
        }
        uint256 paid = paidSoFar[node];
        if (cumulative <= paid) revert NothingToClaim(cumulative, paid);
        amount = cumulative - paid;
        if (totalPaid + amount > totalFunded) revert Underfunded(totalFunded, totalPaid + amount);
        paidSoFar[node] = cumulative;
        totalPaid += amount;
        token.safeTransfer(node, amount);
        emit Claimed(node, cumulative, amount);
    }

    /// The root claims verify against now (all zero before the first one takes effect).
    function effectiveRoot() external view returns (uint64 epoch, bytes32 root, uint256 total, uint64 effectiveAt) {
        Root memory r = _effective();
        return (r.epoch, r.root, r.total, r.effectiveAt);
    }

    /// The root still waiting for its delay (all zero when none waits).
    function pendingRoot() external view returns (uint64 epoch, bytes32 root, uint256 total, uint64 effectiveAt) {
        Root memory r = _waiting();
        return (r.epoch, r.root, r.total, r.effectiveAt);
    }

    /// What a claim of `cumulative` would pay `node` now (0 when nothing is owed).
    function claimable(address node, uint256 cumulative) external view returns (uint256) {
        uint256 paid = paidSoFar[node];
        return cumulative > paid ? cumulative - paid : 0;
    }

    function _due() internal view returns (bool) {
        return _pending.root != bytes32(0) && block.timestamp >= _pending.effectiveAt;
    }

    function _effective() internal view returns (Root memory) {
        return _due() ? _pending : _settled;
    }

    function _waiting() internal view returns (Root memory r) {
        if (_pending.root != bytes32(0) && !_due()) r = _pending;
    }

    /// Records a pending root whose time has come as the settled one.
    function _promoteDue() internal {
        if (!_due()) return;
        _settled = _pending;
        delete _pending;
    }

    function _requireWaiting() internal view {
        if (_pending.root == bytes32(0) || _due()) revert NoPendingRoot();
    }

    /// The checks every root passes against the effective one (which a waiting root never is).
    function _checkRoot(bytes32 root, uint256 totalCumulative) internal view {
        if (root == bytes32(0)) revert EmptyRoot();
        uint256 current = _settled.total;
        if (totalCumulative < current) revert TotalDecreased(current, totalCumulative);
        if (totalCumulative > totalFunded) revert Underfunded(totalFunded, totalCumulative);
        if (totalCumulative - current > maxEpochLiability) {
            revert LiabilityAboveBound(totalCumulative - current, maxEpochLiability);
        }
    }

    function _setRootDelay(uint64 delay) internal {
        if (delay > MAX_ROOT_DELAY) revert DelayTooLong(delay, MAX_ROOT_DELAY);
        emit RootDelaySet(rootDelay, delay);
        rootDelay = delay;
    }

    function _setMaxEpochLiability(uint256 bound) internal {
        emit MaxEpochLiabilitySet(maxEpochLiability, bound);
        maxEpochLiability = bound;
    }
}
