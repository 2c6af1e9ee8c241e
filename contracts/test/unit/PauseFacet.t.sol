// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {GridFixture} from "../utils/GridFixture.sol";
import {IERC173} from "../../src/interfaces/IERC173.sol";
import {IPausable} from "../../src/interfaces/IPausable.sol";

/// @notice Owner-only emergency pause.
contract PauseFacetTest is GridFixture {
    address internal stranger = makeAddr("stranger");

    function test_pause_setsFlag() public {
        vm.expectEmit(address(grid));
        emit IPausable.Paused(owner);
        vm.prank(owner);
        grid.pause();
        assertTrue(grid.paused());
    }

    function test_unpause_clearsFlag() public {
        vm.prank(owner);
        grid.pause();
        vm.expectEmit(address(grid));
        emit IPausable.Unpaused(owner);
        vm.prank(owner);
        grid.unpause();
        assertFalse(grid.paused());
        _bondWorker(stranger, WORKER_MIN); // bonding works again
    }

    function test_pause_revertsWhenPaused() public {
        vm.prank(owner);
        grid.pause();
        vm.expectRevert(IPausable.EnforcedPause.selector);
        vm.prank(owner);
        grid.pause();
    }

    function test_unpause_revertsWhenNotPaused() public {
        vm.expectRevert(IPausable.ExpectedPause.selector);
        vm.prank(owner);
        grid.unpause();
    }

    function test_pause_revertsWhenNotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, stranger));
        vm.prank(stranger);
        grid.pause();
    }

    function test_unpause_revertsWhenNotOwner() public {
        vm.prank(owner);
        grid.pause();
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, stranger));
        vm.prank(stranger);
        grid.unpause();
    }
}
