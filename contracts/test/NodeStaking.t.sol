// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CheatTest} from "./Vm.sol";
import {GBTToken} from "../solidity/GBTToken.sol";
import {NodeStaking} from "../solidity/NodeStaking.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

contract NodeStakingTest is CheatTest {
    address constant GOV = address(0x60);
    address constant TREASURY = address(0x7E);
    address constant NODE = address(0x40DE);
    uint64 constant DELAY = 7 days;
    uint64 constant APPEAL = 3 days;
    GBTToken token;
    NodeStaking staking;

    function setUp() public {
        token = new GBTToken(address(this), TREASURY, address(0xB0), address(0xB1));
        staking = new NodeStaking(token, DELAY, APPEAL, GOV, TREASURY);
        token.transfer(NODE, 1_000 ether);
        vm.prank(NODE);
        token.approve(address(staking), type(uint256).max);
    }

    function _stake(uint256 amount) internal {
        vm.prank(NODE);
        staking.stake(NODE, amount);
    }

    function test_unbondWaitsForTheDelay() public {
        _stake(100 ether);
        vm.prank(NODE);
        staking.unbond(40 ether);
        vm.assertEq(staking.stakeOf(NODE), 60 ether, "active stake");
        (, uint64 releaseAt) = staking.unbondingOf(NODE);
        vm.prank(NODE);
        vm.expectRevert(abi.encodeWithSelector(NodeStaking.UnbondingNotFinished.selector, releaseAt));
        staking.withdraw();
        vm.warp(releaseAt);
        vm.prank(NODE);
        staking.withdraw();
        vm.assertEq(token.balanceOf(NODE), 940 ether, "withdrawn back");
    }

    function test_cannotUnbondMoreThanStaked() public {
        _stake(10 ether);
        vm.prank(NODE);
        vm.expectRevert(abi.encodeWithSelector(NodeStaking.InsufficientStake.selector, 10 ether, 11 ether));
        staking.unbond(11 ether);
    }

    function test_onlyGovernanceSlashes() public {
        _stake(10 ether);
        bytes32 role = staking.GOVERNANCE_ROLE();
        vm.prank(NODE);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, NODE, role));
        staking.proposeSlash(NODE, 1 ether, keccak256("evidence"));
    }

    function test_slashNeedsEvidenceAndWaitsOutTheAppealWindow() public {
        _stake(10 ether);
        vm.startPrank(GOV);
        vm.expectRevert(NodeStaking.MissingEvidence.selector);
        staking.proposeSlash(NODE, 1 ether, bytes32(0));
        uint256 id = staking.proposeSlash(NODE, 4 ether, keccak256("evidence"));
        vm.expectRevert(abi.encodeWithSelector(NodeStaking.AppealWindowOpen.selector, uint64(block.timestamp + APPEAL)));
        staking.executeSlash(id);
        vm.warp(block.timestamp + APPEAL);
        staking.executeSlash(id);
        vm.stopPrank();
        vm.assertEq(staking.stakeOf(NODE), 6 ether, "stake after slash");
        vm.assertEq(token.balanceOf(TREASURY), 300_000_004 ether, "slashed to treasury");
    }

    function test_anAppealedSlashRunsOnlyIfUpheld() public {
        _stake(10 ether);
        vm.prank(GOV);
        uint256 id = staking.proposeSlash(NODE, 4 ether, keccak256("evidence"));
        vm.prank(NODE);
        staking.appeal(id);
        vm.warp(block.timestamp + APPEAL + 1);
        vm.startPrank(GOV);
        vm.expectRevert(
            abi.encodeWithSelector(NodeStaking.WrongSlashStatus.selector, id, NodeStaking.SlashStatus.Appealed)
        );
        staking.executeSlash(id);
        staking.resolveAppeal(id, false);
        vm.stopPrank();
        vm.assertEq(staking.stakeOf(NODE), 10 ether, "appeal won: stake intact");
        vm.prank(NODE);
        staking.unbond(10 ether);
    }

    function test_pendingSlashBlocksEscape() public {
        _stake(10 ether);
        vm.prank(GOV);
        staking.proposeSlash(NODE, 4 ether, keccak256("evidence"));
        vm.prank(NODE);
        vm.expectRevert(abi.encodeWithSelector(NodeStaking.SlashPending.selector, NODE));
        staking.unbond(1 ether);
    }

    function testFuzz_stakeUnbondWithdrawConservesTokens(uint256 stakeAmount, uint256 unbondAmount, uint256 wait)
        public
    {
        stakeAmount = bound(stakeAmount, 1, 1_000 ether);
        unbondAmount = bound(unbondAmount, 1, stakeAmount);
        wait = bound(wait, 0, 2 * DELAY);
        _stake(stakeAmount);
        vm.prank(NODE);
        staking.unbond(unbondAmount);
        vm.warp(block.timestamp + wait);
        vm.prank(NODE);
        if (wait < DELAY) {
            vm.expectRevert(
                abi.encodeWithSelector(NodeStaking.UnbondingNotFinished.selector, uint64(block.timestamp - wait + DELAY))
            );
        }
        staking.withdraw();
        vm.assertEq(
            token.balanceOf(NODE) + token.balanceOf(address(staking)), 1_000 ether, "node + contract hold it all"
        );
        vm.assertEq(
            token.balanceOf(address(staking)), staking.totalStaked() + staking.totalUnbonding(), "books match balance"
        );
    }
}

/// Random stake, unbond, withdraw, time and slash calls from a few nodes.
contract StakingHandler is CheatTest {
    GBTToken public token;
    NodeStaking public staking;
    address public gov;
    address[3] public nodes = [address(0x1001), address(0x1002), address(0x1003)];

    constructor(GBTToken token_, NodeStaking staking_, address gov_) {
        token = token_;
        staking = staking_;
        gov = gov_;
        for (uint256 i = 0; i < nodes.length; i++) {
            vm.prank(nodes[i]);
            token.approve(address(staking), type(uint256).max);
        }
    }

    function stake(uint256 who, uint256 amount) external {
        address node = nodes[who % 3];
        amount = bound(amount, 1, token.balanceOf(node) == 0 ? 1 : token.balanceOf(node));
        if (token.balanceOf(node) == 0) return;
        vm.prank(node);
        staking.stake(node, amount);
    }

    function unbond(uint256 who, uint256 amount) external {
        address node = nodes[who % 3];
        uint256 staked = staking.stakeOf(node);
        if (staked == 0 || staking.openSlashes(node) != 0) return;
        vm.prank(node);
        staking.unbond(bound(amount, 1, staked));
    }

    function withdraw(uint256 who) external {
        address node = nodes[who % 3];
        (uint256 amount, uint64 releaseAt) = staking.unbondingOf(node);
        if (amount == 0 || block.timestamp < releaseAt || staking.openSlashes(node) != 0) return;
        vm.prank(node);
        staking.withdraw();
    }

    function passTime(uint256 secondsToPass) external {
        vm.warp(block.timestamp + bound(secondsToPass, 0, 10 days));
    }

    function slash(uint256 who, uint256 amount) external {
        address node = nodes[who % 3];
        vm.startPrank(gov);
        uint256 id = staking.proposeSlash(node, bound(amount, 1, 2_000_000 ether), keccak256(abi.encode(who)));
        vm.warp(block.timestamp + staking.appealWindow());
        staking.executeSlash(id);
        vm.stopPrank();
    }
}

contract NodeStakingInvariantTest is CheatTest {
    GBTToken token;
    NodeStaking staking;
    StakingHandler handler;
    address constant TREASURY = address(0x7E);
    uint256 initialOutside;

    function setUp() public {
        token = new GBTToken(address(this), TREASURY, address(0xB0), address(0xB1));
        staking = new NodeStaking(token, 7 days, 3 days, address(0x60), TREASURY);
        handler = new StakingHandler(token, staking, address(0x60));
        for (uint256 i = 0; i < 3; i++) {
            token.transfer(handler.nodes(i), 1_000_000 ether);
        }
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// Staking conserves tokens: the contract holds exactly what its books say, and the nodes,
    /// the contract and the treasury together hold what they started with.
    function invariant_stakingConservesTokens() public view {
        vm.assertEq(
            token.balanceOf(address(staking)),
            staking.totalStaked() + staking.totalUnbonding(),
            "contract balance = staked + unbonding"
        );
        uint256 sum = token.balanceOf(address(staking)) + token.balanceOf(TREASURY);
        for (uint256 i = 0; i < 3; i++) {
            sum += token.balanceOf(handler.nodes(i));
        }
        vm.assertEq(sum, 300_000_000 ether + 3_000_000 ether, "no token created or lost");
    }
}
