// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {GridFixture} from "../utils/GridFixture.sol";
import {GridTimelock} from "../../src/governance/GridTimelock.sol";
import {IDiamond} from "../../src/interfaces/IDiamond.sol";
import {IDiamondCut} from "../../src/interfaces/IDiamondCut.sol";
import {ICutTimelock} from "../../src/interfaces/ICutTimelock.sol";
import {IERC173} from "../../src/interfaces/IERC173.sol";
import {IModelRegistry} from "../../src/interfaces/IModelRegistry.sol";
import {IAudit} from "../../src/interfaces/IAudit.sol";

/// @notice A grid owned by a GridTimelock (as deployGrid does on Base): every owner action waits the timelock's
/// delay, which exceeds every exit delay, and a cut then waits its own `cutDelay` on top.
contract GridTimelockTest is GridFixture {
    GridTimelock internal timelock;
    address internal operator = makeAddr("operator");
    address internal stranger = makeAddr("stranger");

    uint256 internal constant MIN_DELAY = 2 * UNBOND_DELAY; // 2 days: above both exit delays, below CUT_DELAY

    function setUp() public override {
        super.setUp();
        timelock = _timelock(MIN_DELAY);
        owner = address(timelock);
        grid = _deployGrid(_defaultInitArgs());
    }

    function _exitDelays() internal pure returns (uint256[] memory delays) {
        delays = new uint256[](2);
        delays[0] = UNBOND_DELAY;
        delays[1] = DEPOSIT_DELAY;
    }

    function _timelock(uint256 minDelay) internal returns (GridTimelock) {
        address[] memory roles = new address[](1);
        roles[0] = operator;
        return new GridTimelock(minDelay, roles, roles, address(0), _exitDelays());
    }

    /// @dev A cut that removes one selector (computeModelId).
    function _cut() internal pure returns (IDiamond.FacetCut[] memory) {
        return
            _singleCut(
                address(0), IDiamond.FacetCutAction.Remove, _one(IModelRegistry.computeModelId.selector)
            );
    }

    function _schedule(bytes memory data, bytes32 salt) internal returns (bytes32 id) {
        vm.prank(operator);
        timelock.schedule(address(grid), 0, data, bytes32(0), salt, MIN_DELAY);
        id = timelock.hashOperation(address(grid), 0, data, bytes32(0), salt);
    }

    function _execute(bytes memory data, bytes32 salt) internal {
        vm.prank(operator);
        timelock.execute(address(grid), 0, data, bytes32(0), salt);
    }

    // ---------------------------------------------------------------- construction

    function test_setUp_gridIsOwnedByTheTimelock() public view {
        assertEq(grid.owner(), address(timelock));
        assertEq(timelock.getMinDelay(), MIN_DELAY);
        assertEq(timelock.longestExitDelay(), UNBOND_DELAY);
        assertTrue(timelock.hasRole(timelock.PROPOSER_ROLE(), operator));
        assertTrue(timelock.hasRole(timelock.EXECUTOR_ROLE(), operator));
        assertFalse(timelock.hasRole(timelock.DEFAULT_ADMIN_ROLE(), operator));
        assertTrue(timelock.hasRole(timelock.DEFAULT_ADMIN_ROLE(), address(timelock)));
    }

    function test_constructor_revertsWhenDelayNotAboveEveryExitDelay() public {
        address[] memory roles = new address[](1);
        roles[0] = operator;
        uint256[] memory delays = new uint256[](2);
        delays[0] = 1 days;
        delays[1] = 5 days;
        // equal to the longest
        vm.expectRevert(abi.encodeWithSelector(GridTimelock.DelayNotAboveExitDelay.selector, 5 days, 5 days));
        new GridTimelock(5 days, roles, roles, address(0), delays);
        // above one, below the other
        vm.expectRevert(abi.encodeWithSelector(GridTimelock.DelayNotAboveExitDelay.selector, 3 days, 5 days));
        new GridTimelock(3 days, roles, roles, address(0), delays);
        // no exit delay to compare with
        vm.expectRevert(
            abi.encodeWithSelector(GridTimelock.DelayNotAboveExitDelay.selector, 6 days, type(uint256).max)
        );
        new GridTimelock(6 days, roles, roles, address(0), new uint256[](0));
        // just above the longest
        GridTimelock ok = new GridTimelock(5 days + 1, roles, roles, address(0), delays);
        assertEq(ok.longestExitDelay(), 5 days);
    }

    function testFuzz_constructor_acceptsOnlyDelaysAboveTheLongestExit(uint64 a, uint64 b, uint64 minDelay)
        public
    {
        uint256[] memory delays = new uint256[](2);
        delays[0] = a;
        delays[1] = b;
        uint256 longest = a > b ? a : b;
        address[] memory roles = new address[](1);
        roles[0] = operator;
        if (minDelay <= longest) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    GridTimelock.DelayNotAboveExitDelay.selector, uint256(minDelay), longest
                )
            );
        }
        GridTimelock t = new GridTimelock(minDelay, roles, roles, address(0), delays);
        if (minDelay > longest) assertEq(t.getMinDelay(), minDelay);
    }

    // ---------------------------------------------------------------- the owner is slow

    function test_proposer_cannotCallTheDiamondDirectly() public {
        bytes32 cutHash = grid.hashDiamondCut(_cut(), address(0), "");
        vm.startPrank(operator);
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, operator));
        grid.announceDiamondCut(_cut(), address(0), "");
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, operator));
        grid.setWorkerAuditRate(stranger, 10_000);
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, operator));
        grid.pause();
        vm.expectRevert(abi.encodeWithSelector(IERC173.NotOwner.selector, operator));
        grid.transferOwnership(operator);
        vm.stopPrank();
        (uint64 executableAt,) = grid.pendingChange(cutHash);
        assertEq(executableAt, 0);
    }

    function test_schedule_revertsBelowMinDelay() public {
        bytes memory data = abi.encodeCall(ICutTimelock.announceDiamondCut, (_cut(), address(0), ""));
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(
                TimelockController.TimelockInsufficientDelay.selector, MIN_DELAY - 1, MIN_DELAY
            )
        );
        timelock.schedule(address(grid), 0, data, bytes32(0), bytes32(0), MIN_DELAY - 1);
    }

    function test_schedule_revertsForStrangers() public {
        bytes memory data = abi.encodeCall(ICutTimelock.announceDiamondCut, (_cut(), address(0), ""));
        bytes32 proposerRole = timelock.PROPOSER_ROLE();
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, proposerRole
            )
        );
        timelock.schedule(address(grid), 0, data, bytes32(0), bytes32(0), MIN_DELAY);
    }

    function test_cut_waitsMinDelayThenCutDelay() public {
        IDiamond.FacetCut[] memory cut = _cut();
        bytes32 cutHash = grid.hashDiamondCut(cut, address(0), "");
        bytes memory announce = abi.encodeCall(ICutTimelock.announceDiamondCut, (cut, address(0), ""));
        bytes memory execute = abi.encodeCall(IDiamondCut.diamondCut, (cut, address(0), ""));
        uint256 start = block.timestamp;

        // 1. the announcement itself waits the timelock's delay
        bytes32 announceId = _schedule(announce, "announce");
        vm.warp(start + MIN_DELAY - 1);
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(
                TimelockController.TimelockUnexpectedOperationState.selector,
                announceId,
                bytes32(1 << uint8(TimelockController.OperationState.Ready))
            )
        );
        timelock.execute(address(grid), 0, announce, bytes32(0), "announce");
        (uint64 executableAt,) = grid.pendingChange(cutHash);
        assertEq(executableAt, 0, "not announced before minDelay");

        vm.warp(start + MIN_DELAY);
        _execute(announce, "announce");
        (executableAt,) = grid.pendingChange(cutHash);
        assertEq(
            executableAt, start + MIN_DELAY + CUT_DELAY, "announced at minDelay, executable cutDelay later"
        );

        // 2. the cut is scheduled right away; once the timelock lets it through, the diamond still holds it
        // until its own cutDelay has passed
        _schedule(execute, "cut");
        vm.warp(start + 2 * MIN_DELAY); // the timelock's delay is over, the cut's is not (2 × 2 days < 2 + 3)
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(ICutTimelock.ChangeNotReady.selector, cutHash, executableAt));
        timelock.execute(address(grid), 0, execute, bytes32(0), "cut");
        assertEq(grid.facetAddress(IModelRegistry.computeModelId.selector), address(modelFacet));

        vm.warp(executableAt);
        _execute(execute, "cut");
        assertEq(grid.facetAddress(IModelRegistry.computeModelId.selector), address(0), "cut applied");
        assertGe(block.timestamp - start, MIN_DELAY + CUT_DELAY);
    }

    function test_ownerActions_waitMinDelay() public {
        bytes memory data = abi.encodeCall(IAudit.setWorkerAuditRate, (stranger, uint16(10_000)));
        uint256 start = block.timestamp;
        bytes32 id = _schedule(data, "rate");
        vm.warp(start + MIN_DELAY - 1);
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(
                TimelockController.TimelockUnexpectedOperationState.selector,
                id,
                bytes32(1 << uint8(TimelockController.OperationState.Ready))
            )
        );
        timelock.execute(address(grid), 0, data, bytes32(0), "rate");
        vm.warp(start + MIN_DELAY);
        _execute(data, "rate");
        assertEq(grid.workerAuditRate(stranger), 10_000);
    }

    // ---------------------------------------------------------------- the delay stays above the exits

    function test_updateDelay_revertsWhenNotAboveExitDelay() public {
        bytes memory lower = abi.encodeCall(TimelockController.updateDelay, (UNBOND_DELAY));
        vm.prank(operator);
        timelock.schedule(address(timelock), 0, lower, bytes32(0), "lower", MIN_DELAY);
        vm.warp(block.timestamp + MIN_DELAY);
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(GridTimelock.DelayNotAboveExitDelay.selector, UNBOND_DELAY, UNBOND_DELAY)
        );
        timelock.execute(address(timelock), 0, lower, bytes32(0), "lower");
        assertEq(timelock.getMinDelay(), MIN_DELAY);

        // through the timelock, a delay still above every exit is accepted
        bytes memory ok = abi.encodeCall(TimelockController.updateDelay, (UNBOND_DELAY + 1));
        vm.prank(operator);
        timelock.schedule(address(timelock), 0, ok, bytes32(0), "ok", MIN_DELAY);
        vm.warp(block.timestamp + MIN_DELAY);
        vm.prank(operator);
        timelock.execute(address(timelock), 0, ok, bytes32(0), "ok");
        assertEq(timelock.getMinDelay(), UNBOND_DELAY + 1);
    }

    function test_updateDelay_revertsForAnyCallerButTheTimelock() public {
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(TimelockController.TimelockUnauthorizedCaller.selector, operator)
        );
        timelock.updateDelay(10 days);
    }
}
