// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title GBT, the network's token.
/// @notice The whole supply is minted once, at deployment, to four allocation holders; there is
/// no mint function afterwards, so the allocation is fixed for good.
contract GBTToken is ERC20 {
    uint256 public constant TOTAL_SUPPLY = 1_000_000_000 ether;
    /// Node rewards pool: funds Settlement, which pays operators for delivered work.
    uint256 public constant REWARDS_POOL_SUPPLY = (TOTAL_SUPPLY * 40) / 100;
    /// Community treasury, controlled by governance.
    uint256 public constant TREASURY_SUPPLY = (TOTAL_SUPPLY * 30) / 100;
    /// Team and development: minted to a vesting wallet, not to people.
    uint256 public constant TEAM_SUPPLY = (TOTAL_SUPPLY * 20) / 100;
    /// Early-adopters airdrop.
    uint256 public constant AIRDROP_SUPPLY = (TOTAL_SUPPLY * 10) / 100;

    error ZeroAllocationHolder();

    constructor(address rewardsPool, address treasury, address teamVesting, address airdrop) ERC20("GBT", "GBT") {
        if (
            rewardsPool == address(0) || treasury == address(0) || teamVesting == address(0)
                || airdrop == address(0)
        ) revert ZeroAllocationHolder();
        _mint(rewardsPool, REWARDS_POOL_SUPPLY);
        _mint(treasury, TREASURY_SUPPLY);
        _mint(teamVesting, TEAM_SUPPLY);
        _mint(airdrop, AIRDROP_SUPPLY);
    }
}
