// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CheatTest} from "./Vm.sol";
import {Merkle4} from "./Merkle.sol";
import {GBTToken} from "../solidity/GBTToken.sol";
import {Settlement} from "../solidity/Settlement.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

contract SettlementTest is CheatTest {
    address constant SETTLER = address(0x5E77);
    address constant GOV = address(0x60);
    address[4] nodes = [address(0x1001), address(0x1002), address(0x1003), address(0x1004)];
    GBTToken token;
    Settlement settlement;

    function setUp() public {
        token = new GBTToken(address(this), address(0xA2), address(0xA3), address(0xA4));
        settlement = new Settlement(token, GOV, SETTLER);
        token.approve(address(settlement), type(uint256).max);
        settlement.fund(1_000 ether);
    }

    function _post(uint64 epoch, uint256[4] memory cumulative) internal returns (bytes32[4] memory leaves) {
        uint256 total;
        for (uint256 i = 0; i < 4; i++) {
            leaves[i] = Merkle4.leaf(nodes[i], cumulative[i]);
            total += cumulative[i];
        }
        vm.prank(SETTLER);
        settlement.postRoot(epoch, Merkle4.root(leaves), total);
    }

    function test_claimPaysCumulativeMinusPaidAndOnlyOnce() public {
        bytes32[4] memory leaves = _post(1, [uint256(10 ether), 20 ether, 0, 5 ether]);
        settlement.claim(nodes[1], 20 ether, Merkle4.proof(leaves, 1));
        vm.assertEq(token.balanceOf(nodes[1]), 20 ether, "first claim pays all");
        vm.expectRevert(abi.encodeWithSelector(Settlement.NothingToClaim.selector, 20 ether, 20 ether));
        settlement.claim(nodes[1], 20 ether, Merkle4.proof(leaves, 1));

        leaves = _post(2, [uint256(10 ether), 32 ether, 0, 5 ether]);
        settlement.claim(nodes[1], 32 ether, Merkle4.proof(leaves, 1));
        vm.assertEq(token.balanceOf(nodes[1]), 32 ether, "second epoch pays the difference");
        vm.assertEq(settlement.totalPaid(), 32 ether, "total paid");
    }

    function test_forgedProofOrAmountReverts() public {
        bytes32[4] memory leaves = _post(1, [uint256(10 ether), 20 ether, 0, 5 ether]);
        vm.expectRevert(Settlement.InvalidProof.selector);
        settlement.claim(nodes[1], 21 ether, Merkle4.proof(leaves, 1));
        vm.expectRevert(Settlement.InvalidProof.selector);
        settlement.claim(nodes[2], 20 ether, Merkle4.proof(leaves, 1));
    }

    function test_onlyTheSettlerPostsAndEpochsMoveForward() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), settlement.SETTLER_ROLE()
            )
        );
        settlement.postRoot(1, bytes32(uint256(1)), 0);
        _post(3, [uint256(1), 0, 0, 0]);
        vm.prank(SETTLER);
        vm.expectRevert(abi.encodeWithSelector(Settlement.EpochNotAfter.selector, 3, 3));
        settlement.postRoot(3, bytes32(uint256(1)), 1);
    }

    function test_rootOwingMoreThanFundedIsRefused() public {
        vm.prank(SETTLER);
        vm.expectRevert(abi.encodeWithSelector(Settlement.Underfunded.selector, 1_000 ether, 1_001 ether));
        settlement.postRoot(1, bytes32(uint256(1)), 1_001 ether);
    }

    function testFuzz_claimPaysExactlyTheIncrease(uint256 first, uint256 increase) public {
        first = bound(first, 1, 500 ether);
        increase = bound(increase, 0, 500 ether);
        bytes32[4] memory leaves = _post(1, [first, 0, 0, 0]);
        settlement.claim(nodes[0], first, Merkle4.proof(leaves, 0));
        leaves = _post(2, [first + increase, 0, 0, 0]);
        if (increase == 0) {
            vm.expectRevert(abi.encodeWithSelector(Settlement.NothingToClaim.selector, first, first));
        }
        settlement.claim(nodes[0], first + increase, Merkle4.proof(leaves, 0));
        vm.assertEq(token.balanceOf(nodes[0]), first + increase, "paid = latest cumulative");
        vm.assertEq(settlement.paidSoFar(nodes[0]), first + increase, "paid so far");
    }
}

/// Random earnings, roots and claims (including repeated and stale claims) over four nodes.
contract SettlementHandler is CheatTest {
    Settlement public settlement;
    GBTToken public token;
    address public settler;
    address[4] public nodes = [address(0x1001), address(0x1002), address(0x1003), address(0x1004)];
    uint256[4] public earned;
    uint256[4] public posted;
    bytes32[4] internal postedLeaves;
    uint64 public epoch;
    /// Set when a call saw some node's paid-so-far go down.
    bool public paidDecreased;
    /// Set when a claim paid something other than posted cumulative minus paid before.
    bool public wrongAmount;

    constructor(Settlement settlement_, GBTToken token_, address settler_) {
        settlement = settlement_;
        token = token_;
        settler = settler_;
    }

    function earn(uint256 who, uint256 amount) external {
        earned[who % 4] += bound(amount, 0, 50 ether);
    }

    function postRoot() external {
        uint256 total;
        for (uint256 i = 0; i < 4; i++) {
            postedLeaves[i] = Merkle4.leaf(nodes[i], earned[i]);
            total += earned[i];
        }
        if (total > settlement.totalFunded()) return;
        epoch += 1;
        vm.prank(settler);
        settlement.postRoot(epoch, Merkle4.root(postedLeaves), total);
        posted = earned;
    }

    function claim(uint256 who) external {
        uint256 i = who % 4;
        if (epoch == 0) return;
        uint256[4] memory before = _paid();
        uint256 balanceBefore = token.balanceOf(nodes[i]);
        try settlement.claim(nodes[i], posted[i], Merkle4.proof(postedLeaves, i)) returns (uint256) {} catch {}
        uint256 expected = posted[i] > before[i] ? posted[i] - before[i] : 0;
        if (token.balanceOf(nodes[i]) - balanceBefore != expected) wrongAmount = true;
        _checkGrowth(before);
    }

    /// A stale proof from an earlier, smaller root must not pay again.
    function claimWithForgedAmount(uint256 who, uint256 extra) external {
        uint256 i = who % 4;
        if (epoch == 0) return;
        uint256[4] memory before = _paid();
        try settlement.claim(nodes[i], posted[i] + bound(extra, 1, 100 ether), Merkle4.proof(postedLeaves, i))
        returns (uint256) {
            wrongAmount = true;
        } catch {}
        _checkGrowth(before);
    }

    function _paid() internal view returns (uint256[4] memory p) {
        for (uint256 i = 0; i < 4; i++) {
            p[i] = settlement.paidSoFar(nodes[i]);
        }
    }

    function _checkGrowth(uint256[4] memory before) internal {
        for (uint256 i = 0; i < 4; i++) {
            if (settlement.paidSoFar(nodes[i]) < before[i]) paidDecreased = true;
        }
    }
}

contract SettlementInvariantTest is CheatTest {
    GBTToken token;
    Settlement settlement;
    SettlementHandler handler;

    function setUp() public {
        token = new GBTToken(address(this), address(0xA2), address(0xA3), address(0xA4));
        settlement = new Settlement(token, address(0x60), address(0x5E77));
        token.approve(address(settlement), type(uint256).max);
        settlement.fund(300 ether);
        handler = new SettlementHandler(settlement, token, address(0x5E77));
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function invariant_totalPaidNeverExceedsFunded() public view {
        vm.assertLe(settlement.totalPaid(), settlement.totalFunded(), "paid <= funded");
        vm.assertEq(
            token.balanceOf(address(settlement)),
            settlement.totalFunded() - settlement.totalPaid(),
            "contract holds funded - paid"
        );
    }

    function invariant_claimsAreIdempotentAndExact() public view {
        vm.assertTrue(!handler.wrongAmount(), "a claim paid other than cumulative - paid");
    }

    function invariant_paidSoFarOnlyGrows() public view {
        vm.assertTrue(!handler.paidDecreased(), "paid-so-far decreased");
        uint256 sum;
        for (uint256 i = 0; i < 4; i++) {
            sum += settlement.paidSoFar(handler.nodes(i));
        }
        vm.assertEq(sum, settlement.totalPaid(), "per-node paid sums to total paid");
    }
}
