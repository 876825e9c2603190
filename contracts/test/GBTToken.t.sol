// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CheatTest} from "./Vm.sol";
import {GBTToken} from "../solidity/GBTToken.sol";
import {TeamVesting} from "../solidity/TeamVesting.sol";

contract GBTTokenTest is CheatTest {
    address constant REWARDS = address(0xA1);
    address constant TREASURY = address(0xA2);
    address constant AIRDROP = address(0xA4);
    address constant TEAM = address(0xA5);
    TeamVesting vesting;
    GBTToken token;

    function setUp() public {
        vm.warp(1_000_000);
        vesting = new TeamVesting(TEAM, uint64(block.timestamp), 4 * 365 days, 365 days);
        token = new GBTToken(REWARDS, TREASURY, address(vesting), AIRDROP);
    }

    function test_allocatesTheWholeSupplyOnce() public view {
        vm.assertEq(token.totalSupply(), 1_000_000_000 ether, "supply");
        vm.assertEq(token.balanceOf(REWARDS), 400_000_000 ether, "rewards pool 40%");
        vm.assertEq(token.balanceOf(TREASURY), 300_000_000 ether, "treasury 30%");
        vm.assertEq(token.balanceOf(address(vesting)), 200_000_000 ether, "team 20%");
        vm.assertEq(token.balanceOf(AIRDROP), 100_000_000 ether, "airdrop 10%");
    }

    function test_teamReleasesNothingBeforeTheCliffThenLinearly() public {
        vm.warp(block.timestamp + 364 days);
        vm.assertEq(vesting.releasable(address(token)), 0, "before cliff");
        vm.warp(1_000_000 + 2 * 365 days);
        vesting.release(address(token));
        vm.assertEq(token.balanceOf(TEAM), 100_000_000 ether, "half after two of four years");
    }
}
