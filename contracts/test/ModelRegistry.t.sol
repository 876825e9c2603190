// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CheatTest} from "./Vm.sol";
import {GBTToken} from "../solidity/GBTToken.sol";
import {ModelRegistry} from "../solidity/ModelRegistry.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

contract ModelRegistryTest is CheatTest {
    address constant GOV = address(0x60);
    address constant TREASURY = address(0x7E);
    address constant PUBLISHER = address(0x9B);
    bytes32 constant MANIFEST = keccak256("manifest");
    GBTToken token;
    ModelRegistry registry;

    function setUp() public {
        token = new GBTToken(address(this), TREASURY, address(0xB0), address(0xB1));
        registry = new ModelRegistry(token, 10 ether, GOV, TREASURY);
        token.transfer(PUBLISHER, 100 ether);
        vm.prank(PUBLISHER);
        token.approve(address(registry), type(uint256).max);
    }

    function test_publishCommitsTheHashWithStake() public {
        vm.prank(PUBLISHER);
        registry.publish(MANIFEST, "https://models.example/m.yaml", 10 ether);
        vm.assertTrue(registry.isListed(MANIFEST), "listed");
        (address publisher,,, uint256 stake,) = registry.models(MANIFEST);
        vm.assertEq(publisher, PUBLISHER, "publisher");
        vm.assertEq(stake, 10 ether, "stake");
        vm.prank(PUBLISHER);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.AlreadyPublished.selector, MANIFEST));
        registry.publish(MANIFEST, "u", 10 ether);
    }

    function test_publishBelowMinimumStakeIsRefused() public {
        vm.prank(PUBLISHER);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.StakeTooLow.selector, 10 ether, 1 ether));
        registry.publish(MANIFEST, "u", 1 ether);
    }

    function test_onlyGovernanceDelistsAndTheStakeIsForfeited() public {
        vm.prank(PUBLISHER);
        registry.publish(MANIFEST, "u", 10 ether);
        bytes32 role = registry.GOVERNANCE_ROLE();
        vm.prank(PUBLISHER);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, PUBLISHER, role));
        registry.delist(MANIFEST, keccak256("reason"));
        vm.prank(GOV);
        registry.delist(MANIFEST, keccak256("reason"));
        vm.assertTrue(!registry.isListed(MANIFEST), "delisted");
        vm.assertEq(token.balanceOf(TREASURY), 300_000_010 ether, "stake forfeited");
    }

    function test_publisherRetiresAndGetsTheStakeBack() public {
        vm.prank(PUBLISHER);
        registry.publish(MANIFEST, "u", 10 ether);
        vm.prank(PUBLISHER);
        registry.retire(MANIFEST);
        vm.assertEq(token.balanceOf(PUBLISHER), 100 ether, "stake returned");
    }
}
