// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {GridFixture} from "../utils/GridFixture.sol";
import {IERC173} from "../../src/interfaces/IERC173.sol";

/// @notice ERC-173 with a two-step transfer.
contract OwnershipFacetTest is GridFixture {
    address internal newOwner = makeAddr("newOwner");
    address internal stranger = makeAddr("stranger");

    function test_owner_isDeployerChoice() public view {
        assertEq(grid.owner(), owner);
        assertEq(grid.pendingOwner(), address(0));
    }

    function test_transferOwnership_setsPendingOnly() public {
        vm.expectEmit(address(grid));
        emit IERC173.OwnershipTransferStarted(owner, newOwner);
        vm.prank(owner);
        grid.transferOwnership(newOwner);
        assertEq(grid.owner(), owner);
        assertEq(grid.pendingOwner(), newOwner);
    }

    function test_acceptOwnership_completesTransfer() public {
        vm.prank(owner);
        grid.transferOwnership(newOwner);
        vm.expectEmit(address(grid));
        emit IERC173.OwnershipTransferred(owner, newOwner);
        vm.prank(newOwner);
        grid.acceptOwnership();
        assertEq(grid.owner(), newOwner);
        assertEq(grid.pendingOwner(), address(0));

        // the old owner lost its powers, the new one has them
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, owner));
        vm.prank(owner);
        grid.pause();
        vm.prank(newOwner);
        grid.pause();
    }

    function test_transferOwnership_toZero_cancelsPending() public {
        vm.prank(owner);
        grid.transferOwnership(newOwner);
        vm.prank(owner);
        grid.transferOwnership(address(0));
        assertEq(grid.pendingOwner(), address(0));
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotPendingOwner.selector, newOwner));
        vm.prank(newOwner);
        grid.acceptOwnership();
    }

    function test_transferOwnership_replacesPending() public {
        vm.prank(owner);
        grid.transferOwnership(newOwner);
        vm.prank(owner);
        grid.transferOwnership(stranger);
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotPendingOwner.selector, newOwner));
        vm.prank(newOwner);
        grid.acceptOwnership();
    }

    function test_transferOwnership_revertsWhenNotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, stranger));
        vm.prank(stranger);
        grid.transferOwnership(stranger);
    }

    function test_acceptOwnership_revertsWhenNotPending() public {
        vm.prank(owner);
        grid.transferOwnership(newOwner);
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotPendingOwner.selector, stranger));
        vm.prank(stranger);
        grid.acceptOwnership();
    }

    function test_acceptOwnership_revertsWhenNothingPending() public {
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotPendingOwner.selector, owner));
        vm.prank(owner);
        grid.acceptOwnership();
    }

    function test_acceptOwnership_onlyOnce() public {
        vm.prank(owner);
        grid.transferOwnership(newOwner);
        vm.prank(newOwner);
        grid.acceptOwnership();
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotPendingOwner.selector, newOwner));
        vm.prank(newOwner);
        grid.acceptOwnership();
    }
}
