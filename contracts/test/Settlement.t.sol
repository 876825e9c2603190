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
    uint64 constant DELAY = 1 hours;
    uint256 constant BOUND = 100 ether;
    address[4] nodes = [address(0x1001), address(0x1002), address(0x1003), address(0x1004)];
    GBTToken token;
    Settlement settlement;

    function setUp() public {
        vm.warp(1_000_000);
        token = new GBTToken(address(this), address(0xA2), address(0xA3), address(0xA4));
        settlement = new Settlement(token, GOV, SETTLER, DELAY, BOUND);
        token.approve(address(settlement), type(uint256).max);
        settlement.fund(1_000 ether);
    }

    function _leaves(uint256[4] memory cumulative) internal view returns (bytes32[4] memory leaves, uint256 total) {
        for (uint256 i = 0; i < 4; i++) {
            leaves[i] = Merkle4.leaf(nodes[i], cumulative[i]);
            total += cumulative[i];
        }
    }

    /// Posts the root of `cumulative` as the settler; it is pending until the delay passes.
    function _postPending(uint64 epoch, uint256[4] memory cumulative) internal returns (bytes32[4] memory leaves) {
        uint256 total;
        (leaves, total) = _leaves(cumulative);
        vm.prank(SETTLER);
        settlement.postRoot(epoch, Merkle4.root(leaves), total);
    }

    /// Posts and waits out the delay, so the root is the effective one.
    function _post(uint64 epoch, uint256[4] memory cumulative) internal returns (bytes32[4] memory leaves) {
        leaves = _postPending(epoch, cumulative);
        vm.warp(block.timestamp + DELAY);
    }

    function _unauthorized(address account, bytes32 role) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, account, role);
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
        vm.expectRevert(_unauthorized(address(this), settlement.SETTLER_ROLE()));
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
        first = bound(first, 1, BOUND);
        increase = bound(increase, 0, BOUND);
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

    function test_claimIsRefusedBeforeTheDelayAndPaysAfterIt() public {
        uint64 effectiveAt = uint64(block.timestamp) + DELAY;
        (bytes32[4] memory expected, uint256 total) = _leaves([uint256(10 ether), 20 ether, 0, 5 ether]);
        vm.expectEmit();
        emit Settlement.RootPosted(1, Merkle4.root(expected), total, effectiveAt);
        bytes32[4] memory leaves = _postPending(1, [uint256(10 ether), 20 ether, 0, 5 ether]);
        (uint64 epoch, bytes32 root,, uint64 at) = settlement.pendingRoot();
        vm.assertEq(epoch, 1, "pending epoch");
        vm.assertEq(at, effectiveAt, "pending effectiveAt");
        (epoch, root,,) = settlement.effectiveRoot();
        vm.assertTrue(epoch == 0 && root == bytes32(0), "nothing in effect yet");

        vm.expectRevert(abi.encodeWithSelector(Settlement.RootNotYetEffective.selector, 1, effectiveAt));
        settlement.claim(nodes[1], 20 ether, Merkle4.proof(leaves, 1));
        vm.warp(effectiveAt - 1);
        vm.expectRevert(abi.encodeWithSelector(Settlement.RootNotYetEffective.selector, 1, effectiveAt));
        settlement.claim(nodes[1], 20 ether, Merkle4.proof(leaves, 1));
        vm.warp(effectiveAt);
        settlement.claim(nodes[1], 20 ether, Merkle4.proof(leaves, 1));
        vm.assertEq(token.balanceOf(nodes[1]), 20 ether, "paid once in effect");
        (epoch, root,,) = settlement.effectiveRoot();
        vm.assertTrue(epoch == 1 && root == Merkle4.root(leaves), "epoch 1 in effect");
        (epoch, root,,) = settlement.pendingRoot();
        vm.assertTrue(epoch == 0 && root == bytes32(0), "nothing pending");
    }

    function test_claimsKeepTheEffectiveRootWhileTheNextOneWaits() public {
        bytes32[4] memory first = _post(1, [uint256(10 ether), 20 ether, 0, 5 ether]);
        uint64 effectiveAt = uint64(block.timestamp) + DELAY;
        bytes32[4] memory second = _postPending(2, [uint256(10 ether), 30 ether, 0, 5 ether]);
        settlement.claim(nodes[1], 20 ether, Merkle4.proof(first, 1));
        vm.expectRevert(abi.encodeWithSelector(Settlement.RootNotYetEffective.selector, 2, effectiveAt));
        settlement.claim(nodes[1], 30 ether, Merkle4.proof(second, 1));
        // One root waits at a time: the settler posts the next after this one takes effect.
        vm.prank(SETTLER);
        vm.expectRevert(abi.encodeWithSelector(Settlement.RootPending.selector, 2, effectiveAt));
        settlement.postRoot(3, bytes32(uint256(1)), 45 ether);
        vm.warp(effectiveAt);
        settlement.claim(nodes[1], 30 ether, Merkle4.proof(second, 1));
        vm.assertEq(token.balanceOf(nodes[1]), 30 ether, "the increase, once");
        _post(3, [uint256(10 ether), 31 ether, 0, 5 ether]);
    }

    function test_governanceCancelsAWrongRootBeforeItEverPays() public {
        bytes32[4] memory first = _post(1, [uint256(10 ether), 20 ether, 0, 5 ether]);
        bytes32[4] memory wrong = _postPending(2, [uint256(10 ether), 90 ether, 0, 5 ether]);
        // Only governance touches a waiting root: not the (hot) settler, not anyone else.
        bytes32 admin = settlement.DEFAULT_ADMIN_ROLE();
        vm.prank(SETTLER);
        vm.expectRevert(_unauthorized(SETTLER, admin));
        settlement.cancelPendingRoot();
        vm.prank(SETTLER);
        vm.expectRevert(_unauthorized(SETTLER, admin));
        settlement.replacePendingRoot(bytes32(uint256(1)), 35 ether);
        vm.expectRevert(_unauthorized(address(this), admin));
        settlement.cancelPendingRoot();

        vm.expectEmit();
        emit Settlement.RootCancelled(2, Merkle4.root(wrong));
        vm.prank(GOV);
        settlement.cancelPendingRoot();
        vm.warp(block.timestamp + DELAY);
        vm.expectRevert(Settlement.InvalidProof.selector);
        settlement.claim(nodes[1], 90 ether, Merkle4.proof(wrong, 1));
        settlement.claim(nodes[1], 20 ether, Merkle4.proof(first, 1));

        // The settler posts epoch 2 again, right this time.
        bytes32[4] memory right = _post(2, [uint256(10 ether), 25 ether, 0, 5 ether]);
        vm.expectRevert(Settlement.InvalidProof.selector);
        settlement.claim(nodes[1], 90 ether, Merkle4.proof(wrong, 1));
        settlement.claim(nodes[1], 25 ether, Merkle4.proof(right, 1));
        vm.assertEq(token.balanceOf(nodes[1]), 25 ether, "never the wrong 90");
        vm.assertEq(settlement.totalPaid(), 25 ether, "total paid");
        vm.prank(GOV);
        vm.expectRevert(Settlement.NoPendingRoot.selector);
        settlement.cancelPendingRoot();
    }

    function test_governanceReplacesAWrongRootAndTheDelayStartsOver() public {
        uint256 posted = block.timestamp;
        bytes32[4] memory wrong = _postPending(1, [uint256(10 ether), 60 ether, 0, 5 ether]);
        (bytes32[4] memory right, uint256 total) = _leaves([uint256(10 ether), 20 ether, 0, 5 ether]);
        vm.warp(posted + DELAY / 2);
        uint64 effectiveAt = uint64(block.timestamp) + DELAY;
        vm.expectEmit();
        emit Settlement.RootReplaced(1, Merkle4.root(wrong), Merkle4.root(right), total, effectiveAt);
        vm.prank(GOV);
        settlement.replacePendingRoot(Merkle4.root(right), total);

        vm.warp(posted + DELAY);
        vm.expectRevert(Settlement.NoRoot.selector);
        settlement.claim(nodes[1], 60 ether, Merkle4.proof(wrong, 1));
        vm.expectRevert(abi.encodeWithSelector(Settlement.RootNotYetEffective.selector, 1, effectiveAt));
        settlement.claim(nodes[1], 20 ether, Merkle4.proof(right, 1));
        vm.warp(effectiveAt);
        vm.expectRevert(Settlement.InvalidProof.selector);
        settlement.claim(nodes[1], 60 ether, Merkle4.proof(wrong, 1));
        settlement.claim(nodes[1], 20 ether, Merkle4.proof(right, 1));
        vm.assertEq(token.balanceOf(nodes[1]), 20 ether, "the replacement pays, the wrong root never");
        // In effect, a root is final.
        vm.prank(GOV);
        vm.expectRevert(Settlement.NoPendingRoot.selector);
        settlement.replacePendingRoot(bytes32(uint256(1)), total);
    }

    function test_newLiabilityPerEpochIsBoundedAtTheBoundary() public {
        vm.startPrank(SETTLER);
        vm.expectRevert(abi.encodeWithSelector(Settlement.LiabilityAboveBound.selector, BOUND + 1, BOUND));
        settlement.postRoot(1, bytes32(uint256(1)), BOUND + 1);
        settlement.postRoot(1, bytes32(uint256(1)), BOUND);
        vm.warp(block.timestamp + DELAY);
        vm.expectRevert(abi.encodeWithSelector(Settlement.LiabilityAboveBound.selector, BOUND + 1, BOUND));
        settlement.postRoot(2, bytes32(uint256(2)), 2 * BOUND + 1);
        settlement.postRoot(2, bytes32(uint256(2)), 2 * BOUND);
        vm.stopPrank();
        // Governance's replacement is bounded the same way (against the effective total).
        vm.startPrank(GOV);
        vm.expectRevert(abi.encodeWithSelector(Settlement.LiabilityAboveBound.selector, BOUND + 1, BOUND));
        settlement.replacePendingRoot(bytes32(uint256(3)), 2 * BOUND + 1);
        settlement.replacePendingRoot(bytes32(uint256(3)), BOUND);
        vm.stopPrank();
        vm.warp(block.timestamp + DELAY);

        bytes32 admin = settlement.DEFAULT_ADMIN_ROLE();
        vm.prank(SETTLER);
        vm.expectRevert(_unauthorized(SETTLER, admin));
        settlement.setMaxEpochLiability(3 * BOUND);
        vm.expectEmit();
        emit Settlement.MaxEpochLiabilitySet(BOUND, 3 * BOUND);
        vm.prank(GOV);
        settlement.setMaxEpochLiability(3 * BOUND);
        vm.prank(SETTLER);
        settlement.postRoot(3, bytes32(uint256(4)), 4 * BOUND);
    }

    function test_onlyGovernanceSetsTheDelayWithinItsCap() public {
        uint64 effectiveAt = uint64(block.timestamp) + DELAY;
        bytes32[4] memory leaves = _postPending(1, [uint256(10 ether), 20 ether, 0, 5 ether]);
        bytes32 admin = settlement.DEFAULT_ADMIN_ROLE();
        vm.prank(SETTLER);
        vm.expectRevert(_unauthorized(SETTLER, admin));
        settlement.setRootDelay(0);
        vm.prank(GOV);
        vm.expectRevert(abi.encodeWithSelector(Settlement.DelayTooLong.selector, 31 days, 30 days));
        settlement.setRootDelay(31 days);
        vm.expectEmit();
        emit Settlement.RootDelaySet(DELAY, 0);
        vm.prank(GOV);
        settlement.setRootDelay(0);
        // A waiting root keeps its time; roots posted from now on take effect at once.
        vm.expectRevert(abi.encodeWithSelector(Settlement.RootNotYetEffective.selector, 1, effectiveAt));
        settlement.claim(nodes[1], 20 ether, Merkle4.proof(leaves, 1));
        vm.warp(effectiveAt);
        leaves = _postPending(2, [uint256(10 ether), 30 ether, 0, 5 ether]);
        settlement.claim(nodes[1], 30 ether, Merkle4.proof(leaves, 1));
        vm.assertEq(token.balanceOf(nodes[1]), 30 ether, "delay 0 pays at once");

        vm.expectRevert(abi.encodeWithSelector(Settlement.DelayTooLong.selector, 31 days, 30 days));
        new Settlement(token, GOV, SETTLER, 31 days, BOUND);
    }

    function test_governanceIsNotTheSettlerAndRootsAreNeverEmpty() public {
        bytes32 settlerRole = settlement.SETTLER_ROLE();
        vm.prank(GOV);
        vm.expectRevert(_unauthorized(GOV, settlerRole));
        settlement.postRoot(1, bytes32(uint256(1)), 0);
        vm.prank(SETTLER);
        vm.expectRevert(Settlement.EmptyRoot.selector);
        settlement.postRoot(1, bytes32(0), 0);
    }
}

/// Random earnings, roots and claims (including repeated and stale claims) over four nodes.
contract SettlementHandler is CheatTest {
    Settlement public settlement;
    GBTToken public token;
    address public settler;
    address public governance;
    address[4] public nodes = [address(0x1001), address(0x1002), address(0x1003), address(0x1004)];
    uint256[4] public earned;
    uint256[4] public posted;
    bytes32[4] internal postedLeaves;
    uint64 public epoch;
    /// Set when a call saw some node's paid-so-far go down.
    bool public paidDecreased;
    /// Set when a claim paid something other than posted cumulative minus paid before.
    bool public wrongAmount;
    /// Set when a claim against a root governance cancelled paid anything.
    bool public cancelledPaid;

    constructor(Settlement settlement_, GBTToken token_, address settler_, address governance_) {
        settlement = settlement_;
        token = token_;
        settler = settler_;
        governance = governance_;
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
        vm.warp(block.timestamp + settlement.rootDelay());
    }

    /// A root inflating one node's earnings, claimed before and after governance cancels it.
    function postWrongRootThenCancel(uint256 who, uint256 extra) external {
        uint256 i = who % 4;
        uint256 inflated = earned[i] + bound(extra, 1, 100 ether);
        bytes32[4] memory wrong;
        uint256 total;
        for (uint256 j = 0; j < 4; j++) {
            uint256 amount = j == i ? inflated : earned[j];
            wrong[j] = Merkle4.leaf(nodes[j], amount);
            total += amount;
        }
        if (total > settlement.totalFunded()) return;
        vm.prank(settler);
        settlement.postRoot(epoch + 1, Merkle4.root(wrong), total);
        uint256 balanceBefore = token.balanceOf(nodes[i]);
        try settlement.claim(nodes[i], inflated, Merkle4.proof(wrong, i)) returns (uint256) {} catch {}
        vm.prank(governance);
        settlement.cancelPendingRoot();
        vm.warp(block.timestamp + settlement.rootDelay());
        try settlement.claim(nodes[i], inflated, Merkle4.proof(wrong, i)) returns (uint256) {} catch {}
        if (token.balanceOf(nodes[i]) != balanceBefore) cancelledPaid = true;
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
        settlement = new Settlement(token, address(0x60), address(0x5E77), 1 hours, type(uint256).max);
        token.approve(address(settlement), type(uint256).max);
        settlement.fund(300 ether);
        handler = new SettlementHandler(settlement, token, address(0x5E77), address(0x60));
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

    function invariant_aCancelledRootNeverPays() public view {
        vm.assertTrue(!handler.cancelledPaid(), "a cancelled root paid");
        for (uint256 i = 0; i < 4; i++) {
            vm.assertLe(settlement.paidSoFar(handler.nodes(i)), handler.earned(i), "paid <= earned");
        }
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
