// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title Stake per node id (the node's address).
/// @notice Anyone may add stake for a node; only the node itself unbonds and withdraws, and
/// withdrawals always go to the node. Unbonded stake waits `unbondingDelay` before it can leave.
/// Slashing needs the governance role and an evidence hash, and waits out an appeal window in
/// which the node can appeal; an appealed slash runs only if governance upholds it.
contract NodeStaking is AccessControl {
    using SafeERC20 for IERC20;

    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");

    enum SlashStatus {
        None,
        Proposed,
        Appealed,
        Upheld,
        Executed,
        Cancelled
    }

    struct Unbonding {
        uint256 amount;
        uint64 releaseAt;
    }

    struct Slash {
        address node;
        uint256 amount;
        bytes32 evidenceHash;
        uint64 appealDeadline;
        SlashStatus status;
    }

    IERC20 public immutable token;
    uint64 public immutable unbondingDelay;
    uint64 public immutable appealWindow;
    /// Where slashed tokens go (the community treasury).
    address public immutable slashRecipient;

    mapping(address node => uint256) public stakeOf;
    mapping(address node => Unbonding) public unbondingOf;
    mapping(address node => uint256) public openSlashes;
    Slash[] public slashes;
    uint256 public totalStaked;
    uint256 public totalUnbonding;

    event Staked(address indexed node, address indexed from, uint256 amount);
    event UnbondingStarted(address indexed node, uint256 amount, uint64 releaseAt);
    event Withdrawn(address indexed node, uint256 amount);
    event SlashProposed(uint256 indexed slashId, address indexed node, uint256 amount, bytes32 evidenceHash, uint64 appealDeadline);
    event SlashAppealed(uint256 indexed slashId, address indexed node);
    event SlashAppealResolved(uint256 indexed slashId, bool upheld);
    event SlashCancelled(uint256 indexed slashId);
    event Slashed(uint256 indexed slashId, address indexed node, uint256 amount);

    error ZeroAmount();
    error InsufficientStake(uint256 available, uint256 requested);
    error NothingUnbonding();
    error UnbondingNotFinished(uint64 releaseAt);
    error SlashPending(address node);
    error MissingEvidence();
    error UnknownSlash(uint256 slashId);
    error WrongSlashStatus(uint256 slashId, SlashStatus status);
    error NotSlashedNode(uint256 slashId);
    error AppealWindowClosed(uint64 appealDeadline);
    error AppealWindowOpen(uint64 appealDeadline);

    constructor(IERC20 token_, uint64 unbondingDelay_, uint64 appealWindow_, address governance, address slashRecipient_) {
        token = token_;
        unbondingDelay = unbondingDelay_;
        appealWindow = appealWindow_;
        slashRecipient = slashRecipient_;
        _grantRole(DEFAULT_ADMIN_ROLE, governance);
        _grantRole(GOVERNANCE_ROLE, governance);
    }

    /// Adds `amount` of the caller's tokens to `node`'s stake (the caller must approve first).
    function stake(address node, uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        stakeOf[node] += amount;
        totalStaked += amount;
        token.safeTransferFrom(msg.sender, address(this), amount);
        emit Staked(node, msg.sender, amount);
    }

    /// Moves `amount` of the caller's stake into unbonding; a later unbond restarts the delay
    /// for everything still unbonding.
    function unbond(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        uint256 staked = stakeOf[msg.sender];
        if (amount > staked) revert InsufficientStake(staked, amount);
        if (openSlashes[msg.sender] != 0) revert SlashPending(msg.sender);
        stakeOf[msg.sender] = staked - amount;
        totalStaked -= amount;
        Unbonding storage u = unbondingOf[msg.sender];
        u.amount += amount;
        u.releaseAt = uint64(block.timestamp) + unbondingDelay;
        totalUnbonding += amount;
        emit UnbondingStarted(msg.sender, amount, u.releaseAt);
    }

    /// Pays the caller's finished unbonding back to it.
    function withdraw() external returns (uint256 amount) {
        Unbonding storage u = unbondingOf[msg.sender];
        amount = u.amount;
        if (amount == 0) revert NothingUnbonding();
        if (block.timestamp < u.releaseAt) revert UnbondingNotFinished(u.releaseAt);
        if (openSlashes[msg.sender] != 0) revert SlashPending(msg.sender);
        u.amount = 0;
        u.releaseAt = 0;
        totalUnbonding -= amount;
        token.safeTransfer(msg.sender, amount);
        emit Withdrawn(msg.sender, amount);
    }

    /// Governance proposes a slash backed by evidence; it can run after the appeal window.
    function proposeSlash(address node, uint256 amount, bytes32 evidenceHash)
        external
        onlyRole(GOVERNANCE_ROLE)
        returns (uint256 slashId)
    {
        if (amount == 0) revert ZeroAmount();
        if (evidenceHash == bytes32(0)) revert MissingEvidence();
        uint64 deadline = uint64(block.timestamp) + appealWindow;
        slashId = slashes.length;
        slashes.push(Slash(node, amount, evidenceHash, deadline, SlashStatus.Proposed));
        openSlashes[node] += 1;
        emit SlashProposed(slashId, node, amount, evidenceHash, deadline);
    }

    /// The slashed node appeals within the window; the slash then waits for governance.
    function appeal(uint256 slashId) external {
        Slash storage s = _slash(slashId);
        if (s.node != msg.sender) revert NotSlashedNode(slashId);
        if (s.status != SlashStatus.Proposed) revert WrongSlashStatus(slashId, s.status);
        if (block.timestamp >= s.appealDeadline) revert AppealWindowClosed(s.appealDeadline);
        s.status = SlashStatus.Appealed;
        emit SlashAppealed(slashId, msg.sender);
    }

    /// Governance decides an appeal: upheld slashes can be executed, rejected ones are cancelled.
    function resolveAppeal(uint256 slashId, bool upheld) external onlyRole(GOVERNANCE_ROLE) {
        Slash storage s = _slash(slashId);
        if (s.status != SlashStatus.Appealed) revert WrongSlashStatus(slashId, s.status);
        if (upheld) {
            s.status = SlashStatus.Upheld;
        } else {
            s.status = SlashStatus.Cancelled;
            openSlashes[s.node] -= 1;
        }
        emit SlashAppealResolved(slashId, upheld);
    }

    function cancelSlash(uint256 slashId) external onlyRole(GOVERNANCE_ROLE) {
        Slash storage s = _slash(slashId);
        if (s.status != SlashStatus.Proposed && s.status != SlashStatus.Appealed && s.status != SlashStatus.Upheld) {
            revert WrongSlashStatus(slashId, s.status);
        }
        s.status = SlashStatus.Cancelled;
        openSlashes[s.node] -= 1;
        emit SlashCancelled(slashId);
    }

    /// Runs a slash whose appeal window passed unappealed, or whose appeal was upheld. Takes
    /// from active stake first, then from unbonding, never more than the node holds here.
    function executeSlash(uint256 slashId) external onlyRole(GOVERNANCE_ROLE) returns (uint256 taken) {
        Slash storage s = _slash(slashId);
        if (s.status == SlashStatus.Proposed) {
            if (block.timestamp < s.appealDeadline) revert AppealWindowOpen(s.appealDeadline);
        } else if (s.status != SlashStatus.Upheld) {
            revert WrongSlashStatus(slashId, s.status);
        }
        s.status = SlashStatus.Executed;
        openSlashes[s.node] -= 1;
        uint256 remaining = s.amount;
        uint256 fromStake = remaining < stakeOf[s.node] ? remaining : stakeOf[s.node];
        stakeOf[s.node] -= fromStake;
        totalStaked -= fromStake;
        remaining -= fromStake;
        Unbonding storage u = unbondingOf[s.node];
        uint256 fromUnbonding = remaining < u.amount ? remaining : u.amount;
        u.amount -= fromUnbonding;
        totalUnbonding -= fromUnbonding;
        taken = fromStake + fromUnbonding;
        if (taken != 0) token.safeTransfer(slashRecipient, taken);
        emit Slashed(slashId, s.node, taken);
    }

    function slashCount() external view returns (uint256) {
        return slashes.length;
    }

    function _slash(uint256 slashId) private view returns (Slash storage) {
        if (slashId >= slashes.length) revert UnknownSlash(slashId);
        return slashes[slashId];
    }
}
