// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title Model manifests committed on chain.
/// @notice A publisher commits a manifest hash and its URI with a stake; governance can delist a
/// model, forfeiting the stake to the treasury. A publisher may retire its own listed model and
/// take the stake back.
contract ModelRegistry is AccessControl {
    using SafeERC20 for IERC20;

    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");

    struct Model {
        address publisher;
        uint64 publishedAt;
        bool listed;
        uint256 stake;
        string uri;
    }

    IERC20 public immutable token;
    uint256 public immutable minPublisherStake;
    address public immutable forfeitRecipient;
    mapping(bytes32 manifestHash => Model) public models;

    event Published(bytes32 indexed manifestHash, address indexed publisher, string uri, uint256 stake);
    event Delisted(bytes32 indexed manifestHash, bytes32 reasonHash, uint256 forfeited);
    event Retired(bytes32 indexed manifestHash, uint256 returned);

    error AlreadyPublished(bytes32 manifestHash);
    error NotListed(bytes32 manifestHash);
    error StakeTooLow(uint256 minimum, uint256 offered);
    error EmptyUri();
    error NotPublisher(bytes32 manifestHash);

    constructor(IERC20 token_, uint256 minPublisherStake_, address governance, address forfeitRecipient_) {
        token = token_;
        minPublisherStake = minPublisherStake_;
        forfeitRecipient = forfeitRecipient_;
        _grantRole(DEFAULT_ADMIN_ROLE, governance);
        _grantRole(GOVERNANCE_ROLE, governance);
    }

    function publish(bytes32 manifestHash, string calldata uri, uint256 stake) external {
        if (models[manifestHash].publisher != address(0)) revert AlreadyPublished(manifestHash);
        if (stake < minPublisherStake) revert StakeTooLow(minPublisherStake, stake);
        if (bytes(uri).length == 0) revert EmptyUri();
        models[manifestHash] = Model(msg.sender, uint64(block.timestamp), true, stake, uri);
        if (stake != 0) token.safeTransferFrom(msg.sender, address(this), stake);
        emit Published(manifestHash, msg.sender, uri, stake);
    }

    function delist(bytes32 manifestHash, bytes32 reasonHash) external onlyRole(GOVERNANCE_ROLE) {
        Model storage m = models[manifestHash];
        if (!m.listed) revert NotListed(manifestHash);
        uint256 forfeited = m.stake;
        m.listed = false;
        m.stake = 0;
        if (forfeited != 0) token.safeTransfer(forfeitRecipient, forfeited);
        emit Delisted(manifestHash, reasonHash, forfeited);
    }

    function retire(bytes32 manifestHash) external {
        Model storage m = models[manifestHash];
        if (!m.listed) revert NotListed(manifestHash);
        if (m.publisher != msg.sender) revert NotPublisher(manifestHash);
        uint256 returned = m.stake;
        m.listed = false;
        m.stake = 0;
        if (returned != 0) token.safeTransfer(msg.sender, returned);
        emit Retired(manifestHash, returned);
    }

    function isListed(bytes32 manifestHash) external view returns (bool) {
        return models[manifestHash].listed;
    }
}
