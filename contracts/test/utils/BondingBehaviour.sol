// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {GridFixture} from "./GridFixture.sol";
import {BondingSlashHarness} from "./BondingSlashHarness.sol";
import {IDiamond} from "../../src/interfaces/IDiamond.sol";
import {IBonding} from "../../src/interfaces/IBonding.sol";
import {ICommon} from "../../src/interfaces/ICommon.sol";
import {IPausable} from "../../src/interfaces/IPausable.sol";

/// @notice Tests every bonding behaviour through one role's facet; WorkerRegistryFacetTest and
/// ValidatorRegistryFacetTest run it for each role (one library, two facets).
abstract contract BondingBehaviour is GridFixture {
    address internal alice = makeAddr("alice");
    address internal bob = makeAddr("bob");
    address internal aliceKey = makeAddr("aliceKey");
    address internal bobKey = makeAddr("bobKey");

    BondingSlashHarness internal harness; // `grid` cast to the test-only slash facet

    // ---------------------------------------------------------------- per-role hooks

    function _role() internal pure virtual returns (IBonding.Role);
    function _min() internal pure virtual returns (uint256);
    function _bondAs(address who, uint256 amount, address operator) internal virtual;
    function _increaseAs(address who, uint256 amount) internal virtual;
    function _requestUnbondAs(address who, uint256 amount) internal virtual;
    function _cancelAs(address who) internal virtual;
    function _withdrawAs(address who) internal virtual;
    function _setOperatorAs(address who, address operator) internal virtual;
    function _info(address who) internal view virtual returns (IBonding.BondInfo memory);
    function _ownerOfKey(address operator) internal view virtual returns (address);
    function _isActive(address who) internal view virtual returns (bool);
    function _total() internal view virtual returns (uint256);
    function _minimumView() internal view virtual returns (uint256);
    function _delayView() internal view virtual returns (uint64);

    function setUp() public virtual override {
        super.setUp();
        BondingSlashHarness h = new BondingSlashHarness();
        bytes4[] memory s = new bytes4[](6);
        s[0] = BondingSlashHarness.harnessSlash.selector;
        s[1] = BondingSlashHarness.harnessBondedAmount.selector;
        s[2] = BondingSlashHarness.harnessIsActive.selector;
        s[3] = BondingSlashHarness.harnessOwnerOf.selector;
        s[4] = BondingSlashHarness.harnessOperatorAt.selector;
        s[5] = BondingSlashHarness.harnessWeightAt.selector;
        _executeCut(_singleCut(address(h), IDiamond.FacetCutAction.Add, s), address(0), "");
        harness = BondingSlashHarness(address(grid));
    }

    function _fundAndBond(address who, uint256 amount, address operator) internal {
        _fund(who, amount);
        _bondAs(who, amount, operator);
    }

    function _pause() internal {
        vm.prank(owner);
        grid.pause();
    }

    // ---------------------------------------------------------------- config views

    function test_config_matchesInit() public view {
        assertEq(_minimumView(), _min());
        assertEq(_delayView(), UNBOND_DELAY);
        assertEq(_total(), 0);
    }

    // ---------------------------------------------------------------- bond

    function test_bond_pullsTokensAndActivates() public {
        uint256 amount = _min() + 5e18;
        _fund(alice, amount);

        vm.expectEmit(address(grid));
        emit IBonding.OperatorSet(_role(), alice, alice);
        vm.expectEmit(address(grid));
        emit IBonding.Bonded(_role(), alice, amount, amount);
        _bondAs(alice, amount, address(0));

        IBonding.BondInfo memory b = _info(alice);
        assertEq(b.amount, amount);
        assertEq(b.unbonding, 0);
        assertEq(b.unbondReadyAt, 0);
        assertEq(b.operator, alice);
        assertEq(b.slashed, 0);
        assertTrue(b.active);
        assertTrue(_isActive(alice));
        assertEq(_ownerOfKey(alice), alice);
        assertEq(_total(), amount);
        assertEq(aipg.balanceOf(alice), 0);
        assertEq(aipg.balanceOf(address(grid)), amount);
        assertEq(harness.harnessBondedAmount(_role(), alice), amount);
    }

    function test_bond_withOperator_mapsKeyToOwner() public {
        _fund(alice, _min());
        vm.expectEmit(address(grid));
        emit IBonding.OperatorSet(_role(), alice, aliceKey);
        _bondAs(alice, _min(), aliceKey);
        assertEq(_info(alice).operator, aliceKey);
        assertEq(_ownerOfKey(aliceKey), alice);
        assertEq(_ownerOfKey(alice), address(0));
    }

    function test_bond_revertsWhenBelowMinimum() public {
        _fund(alice, _min());
        vm.expectRevert(abi.encodeWithSelector(IBonding.BondTooLow.selector, _min() - 1, _min()));
        _bondAs(alice, _min() - 1, address(0));
    }

    function test_bond_revertsWhenZero() public {
        vm.expectRevert(abi.encodeWithSelector(IBonding.BondTooLow.selector, 0, _min()));
        _bondAs(alice, 0, address(0));
    }

    function test_bond_revertsWhenAlreadyBonded() public {
        _fundAndBond(alice, _min(), address(0));
        _fund(alice, _min());
        vm.expectRevert(abi.encodeWithSelector(IBonding.AlreadyBonded.selector, alice));
        _bondAs(alice, _min(), address(0));
    }

    function test_bond_revertsWhenAlreadyBondedWhileFullyUnbonding() public {
        _fundAndBond(alice, _min(), address(0));
        _requestUnbondAs(alice, _min());
        _fund(alice, _min());
        vm.expectRevert(abi.encodeWithSelector(IBonding.AlreadyBonded.selector, alice));
        _bondAs(alice, _min(), address(0));
    }

    function test_bond_revertsWhenOperatorTaken() public {
        _fundAndBond(alice, _min(), aliceKey);
        _fund(bob, _min());
        vm.expectRevert(abi.encodeWithSelector(IBonding.OperatorTaken.selector, aliceKey, alice));
        _bondAs(bob, _min(), aliceKey);
    }

    function test_bond_revertsWhenOperatorIsAnotherSelfSigningOwner() public {
        _fundAndBond(alice, _min(), address(0));
        _fund(bob, _min());
        vm.expectRevert(abi.encodeWithSelector(IBonding.OperatorTaken.selector, alice, alice));
        _bondAs(bob, _min(), alice);
    }

    function test_bond_revertsWhenOwnKeyIsAnotherOwnersOperator() public {
        _fundAndBond(alice, _min(), bob);
        _fund(bob, _min());
        vm.expectRevert(abi.encodeWithSelector(IBonding.OperatorTaken.selector, bob, alice));
        _bondAs(bob, _min(), address(0));
    }

    function test_bond_revertsWhenPaused() public {
        _fund(alice, _min());
        _pause();
        vm.expectRevert(IPausable.EnforcedPause.selector);
        _bondAs(alice, _min(), address(0));
    }

    function test_bond_revertsWithoutAllowance() public {
        aipg.mint(alice, _min());
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(grid), 0, _min())
        );
        _bondAs(alice, _min(), address(0));
    }

    function test_bond_revertsWithoutBalance() public {
        vm.prank(alice);
        aipg.approve(address(grid), type(uint256).max);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, alice, 0, _min())
        );
        _bondAs(alice, _min(), address(0));
    }

    function test_bond_afterFullWithdrawal_reusesOwnerAndKey() public {
        _fundAndBond(alice, _min(), aliceKey);
        _requestUnbondAs(alice, _min());
        vm.warp(block.timestamp + UNBOND_DELAY);
        _withdrawAs(alice);

        // the key is free for someone else, and alice can bond again
        _fundAndBond(bob, _min(), aliceKey);
        assertEq(_ownerOfKey(aliceKey), bob);
        _bondAs(alice, _min(), address(0));
        assertTrue(_isActive(alice));
        assertEq(_total(), 2 * _min());
    }

    function testFuzz_bond(uint256 amount, address operator) public {
        amount = bound(amount, _min(), 1e30);
        vm.assume(operator != address(grid));
        _fundAndBond(alice, amount, operator);
        address expectedKey = operator == address(0) ? alice : operator;
        assertEq(_info(alice).amount, amount);
        assertEq(_info(alice).operator, expectedKey);
        assertEq(_ownerOfKey(expectedKey), alice);
        assertTrue(_isActive(alice));
        assertEq(_total(), amount);
        assertEq(aipg.balanceOf(address(grid)), amount);
    }

    function testFuzz_bond_revertsBelowMinimum(uint256 amount) public {
        amount = bound(amount, 0, _min() - 1);
        _fund(alice, amount);
        vm.expectRevert(abi.encodeWithSelector(IBonding.BondTooLow.selector, amount, _min()));
        _bondAs(alice, amount, address(0));
    }

    // ---------------------------------------------------------------- increase

    function test_increase_addsToActiveBond() public {
        _fundAndBond(alice, _min(), address(0));
        _fund(alice, 7e18);
        vm.expectEmit(address(grid));
        emit IBonding.Bonded(_role(), alice, 7e18, _min() + 7e18);
        _increaseAs(alice, 7e18);
        assertEq(_info(alice).amount, _min() + 7e18);
        assertEq(_total(), _min() + 7e18);
        assertEq(aipg.balanceOf(address(grid)), _min() + 7e18);
    }

    function test_increase_whileFullyUnbonding_countsOnlyAtMinimum() public {
        _fundAndBond(alice, _min(), address(0));
        _requestUnbondAs(alice, _min());
        _fund(alice, _min());
        _increaseAs(alice, _min() - 1);
        assertFalse(_isActive(alice));
        _increaseAs(alice, 1);
        assertTrue(_isActive(alice));
        assertEq(_info(alice).unbonding, _min());
        assertEq(_total(), 2 * _min());
    }

    function test_increase_revertsWhenZero() public {
        _fundAndBond(alice, _min(), address(0));
        vm.expectRevert(ICommon.ZeroAmount.selector);
        _increaseAs(alice, 0);
    }

    function test_increase_revertsWhenNotBonded() public {
        _fund(alice, _min());
        vm.expectRevert(abi.encodeWithSelector(IBonding.NotBonded.selector, alice));
        _increaseAs(alice, _min());
    }

    function test_increase_revertsWhenPaused() public {
        _fundAndBond(alice, _min(), address(0));
        _fund(alice, 1e18);
        _pause();
        vm.expectRevert(IPausable.EnforcedPause.selector);
        _increaseAs(alice, 1e18);
    }

    // ---------------------------------------------------------------- request unbond

    function test_requestUnbond_partial_keepsActive() public {
        _fundAndBond(alice, 3 * _min(), address(0));
        uint64 readyAt = uint64(block.timestamp) + UNBOND_DELAY;
        vm.expectEmit(address(grid));
        emit IBonding.UnbondRequested(_role(), alice, _min(), readyAt);
        _requestUnbondAs(alice, _min());

        IBonding.BondInfo memory b = _info(alice);
        assertEq(b.amount, 2 * _min());
        assertEq(b.unbonding, _min());
        assertEq(b.unbondReadyAt, readyAt);
        assertTrue(b.active);
        assertEq(_total(), 3 * _min(), "unbonding still counts");
        assertEq(harness.harnessBondedAmount(_role(), alice), 3 * _min());
    }

    function test_requestUnbond_full_deactivates() public {
        _fundAndBond(alice, _min(), address(0));
        _requestUnbondAs(alice, _min());
        assertFalse(_isActive(alice));
        assertEq(_info(alice).amount, 0);
        assertEq(_info(alice).unbonding, _min());
        assertEq(_ownerOfKey(alice), alice, "key stays while something is bonded");
    }

    function test_requestUnbond_againAddsAndRestartsDelay() public {
        _fundAndBond(alice, 3 * _min(), address(0));
        _requestUnbondAs(alice, _min());
        vm.warp(block.timestamp + 100);
        _requestUnbondAs(alice, _min());
        assertEq(_info(alice).unbonding, 2 * _min());
        assertEq(_info(alice).unbondReadyAt, uint64(block.timestamp) + UNBOND_DELAY);
    }

    function test_requestUnbond_revertsWhenRemainderBelowMinimum() public {
        _fundAndBond(alice, _min() + 10, address(0));
        vm.expectRevert(abi.encodeWithSelector(IBonding.BondTooLow.selector, _min() - 1, _min()));
        _requestUnbondAs(alice, 11);
    }

    function test_requestUnbond_revertsWhenAboveActive() public {
        _fundAndBond(alice, _min(), address(0));
        vm.expectRevert(abi.encodeWithSelector(IBonding.InsufficientBond.selector, _min() + 1, _min()));
        _requestUnbondAs(alice, _min() + 1);
    }

    function test_requestUnbond_revertsWhenAboveActiveWhileUnbonding() public {
        _fundAndBond(alice, _min(), address(0));
        _requestUnbondAs(alice, _min());
        vm.expectRevert(abi.encodeWithSelector(IBonding.InsufficientBond.selector, 1, 0));
        _requestUnbondAs(alice, 1);
    }

    function test_requestUnbond_revertsWhenZero() public {
        _fundAndBond(alice, _min(), address(0));
        vm.expectRevert(ICommon.ZeroAmount.selector);
        _requestUnbondAs(alice, 0);
    }

    function test_requestUnbond_revertsWhenNotBonded() public {
        vm.expectRevert(abi.encodeWithSelector(IBonding.NotBonded.selector, alice));
        _requestUnbondAs(alice, 1);
    }

    function test_requestUnbond_worksWhilePaused() public {
        _fundAndBond(alice, _min(), address(0));
        _pause();
        _requestUnbondAs(alice, _min());
        assertEq(_info(alice).unbonding, _min());
    }

    function testFuzz_requestUnbond(uint256 bonded, uint256 amount) public {
        bonded = bound(bonded, _min(), 1e30);
        amount = bound(amount, 1, bonded + _min());
        _fundAndBond(alice, bonded, address(0));
        if (amount > bonded) {
            vm.expectRevert(abi.encodeWithSelector(IBonding.InsufficientBond.selector, amount, bonded));
        } else if (bonded - amount != 0 && bonded - amount < _min()) {
            vm.expectRevert(abi.encodeWithSelector(IBonding.BondTooLow.selector, bonded - amount, _min()));
        }
        _requestUnbondAs(alice, amount);
        IBonding.BondInfo memory b = _info(alice);
        assertEq(b.amount + b.unbonding, bonded);
        assertEq(_total(), bonded);
        assertEq(b.active, b.amount >= _min());
        assertEq(_isActive(alice), b.amount >= _min());
    }

    // ---------------------------------------------------------------- cancel

    function test_cancel_movesUnbondingBack() public {
        _fundAndBond(alice, 2 * _min(), address(0));
        _requestUnbondAs(alice, 2 * _min());
        assertFalse(_isActive(alice));
        vm.expectEmit(address(grid));
        emit IBonding.UnbondCancelled(_role(), alice, 2 * _min());
        _cancelAs(alice);
        IBonding.BondInfo memory b = _info(alice);
        assertEq(b.amount, 2 * _min());
        assertEq(b.unbonding, 0);
        assertEq(b.unbondReadyAt, 0);
        assertTrue(_isActive(alice));
        assertEq(_total(), 2 * _min());
    }

    function test_cancel_worksWhilePaused() public {
        _fundAndBond(alice, _min(), address(0));
        _requestUnbondAs(alice, _min());
        _pause();
        _cancelAs(alice);
        assertEq(_info(alice).amount, _min());
    }

    function test_cancel_revertsWhenNothingUnbonding() public {
        _fundAndBond(alice, _min(), address(0));
        vm.expectRevert(abi.encodeWithSelector(IBonding.NothingUnbonding.selector, alice));
        _cancelAs(alice);
    }

    function test_cancel_revertsWhenNeverBonded() public {
        vm.expectRevert(abi.encodeWithSelector(IBonding.NothingUnbonding.selector, alice));
        _cancelAs(alice);
    }

    // ---------------------------------------------------------------- withdraw

    function test_withdraw_afterDelay_paysOwner() public {
        _fundAndBond(alice, 3 * _min(), aliceKey);
        _requestUnbondAs(alice, _min());
        vm.warp(block.timestamp + UNBOND_DELAY);
        vm.expectEmit(address(grid));
        emit IBonding.BondWithdrawn(_role(), alice, _min());
        _withdrawAs(alice);

        IBonding.BondInfo memory b = _info(alice);
        assertEq(b.amount, 2 * _min());
        assertEq(b.unbonding, 0);
        assertEq(b.unbondReadyAt, 0);
        assertEq(b.operator, aliceKey, "partial withdrawal keeps the key");
        assertEq(_ownerOfKey(aliceKey), alice);
        assertEq(_total(), 2 * _min());
        assertEq(aipg.balanceOf(alice), _min());
        assertEq(aipg.balanceOf(address(grid)), 2 * _min());
    }

    function test_withdraw_everything_releasesKey() public {
        _fundAndBond(alice, _min(), aliceKey);
        _requestUnbondAs(alice, _min());
        vm.warp(block.timestamp + UNBOND_DELAY);
        _withdrawAs(alice);
        assertEq(_info(alice).operator, address(0));
        assertEq(_ownerOfKey(aliceKey), address(0));
        assertEq(harness.harnessBondedAmount(_role(), alice), 0);
        assertEq(_total(), 0);
        assertEq(aipg.balanceOf(alice), _min());
    }

    function test_withdraw_revertsBeforeDelay() public {
        _fundAndBond(alice, _min(), address(0));
        _requestUnbondAs(alice, _min());
        uint64 readyAt = uint64(block.timestamp) + UNBOND_DELAY;
        vm.warp(readyAt - 1);
        vm.expectRevert(abi.encodeWithSelector(IBonding.UnbondNotReady.selector, readyAt, readyAt - 1));
        _withdrawAs(alice);
    }

    function test_withdraw_revertsWhenNothingUnbonding() public {
        _fundAndBond(alice, _min(), address(0));
        vm.expectRevert(abi.encodeWithSelector(IBonding.NothingUnbonding.selector, alice));
        _withdrawAs(alice);
    }

    function test_withdraw_revertsAfterCancel() public {
        _fundAndBond(alice, _min(), address(0));
        _requestUnbondAs(alice, _min());
        _cancelAs(alice);
        vm.warp(block.timestamp + UNBOND_DELAY);
        vm.expectRevert(abi.encodeWithSelector(IBonding.NothingUnbonding.selector, alice));
        _withdrawAs(alice);
    }

    function test_withdraw_worksWhilePaused() public {
        _fundAndBond(alice, _min(), address(0));
        _requestUnbondAs(alice, _min());
        _pause();
        vm.warp(block.timestamp + UNBOND_DELAY);
        _withdrawAs(alice);
        assertEq(aipg.balanceOf(alice), _min());
    }

    function test_withdraw_byOperatorKey_cannotTouchOwnersBond() public {
        _fundAndBond(alice, _min(), aliceKey);
        _requestUnbondAs(alice, _min());
        vm.warp(block.timestamp + UNBOND_DELAY);
        vm.expectRevert(abi.encodeWithSelector(IBonding.NothingUnbonding.selector, aliceKey));
        _withdrawAs(aliceKey);
        assertEq(_info(alice).unbonding, _min());
    }

    function testFuzz_withdraw_timing(uint256 bonded, uint256 amount, uint256 wait) public {
        bonded = bound(bonded, _min(), 1e30);
        amount = bound(amount, 1, bonded);
        if (bonded - amount != 0 && bonded - amount < _min()) amount = bonded; // keep the request valid
        wait = bound(wait, 0, 3 * uint256(UNBOND_DELAY));
        _fundAndBond(alice, bonded, address(0));
        _requestUnbondAs(alice, amount);
        uint64 readyAt = uint64(block.timestamp) + UNBOND_DELAY;
        vm.warp(block.timestamp + wait);
        if (wait < UNBOND_DELAY) {
            vm.expectRevert(
                abi.encodeWithSelector(IBonding.UnbondNotReady.selector, readyAt, uint64(block.timestamp))
            );
            _withdrawAs(alice);
            assertEq(aipg.balanceOf(alice), 0);
            assertEq(_total(), bonded);
        } else {
            _withdrawAs(alice);
            assertEq(aipg.balanceOf(alice), amount);
            assertEq(_total(), bonded - amount);
            assertEq(_info(alice).amount, bonded - amount);
            assertEq(aipg.balanceOf(address(grid)), bonded - amount);
        }
    }

    // ---------------------------------------------------------------- operator

    function test_setOperator_movesKey() public {
        _fundAndBond(alice, _min(), aliceKey);
        vm.expectEmit(address(grid));
        emit IBonding.OperatorSet(_role(), alice, bobKey);
        _setOperatorAs(alice, bobKey);
        assertEq(_info(alice).operator, bobKey);
        assertEq(_ownerOfKey(bobKey), alice);
        assertEq(_ownerOfKey(aliceKey), address(0));
    }

    function test_setOperator_zeroMeansOwner() public {
        _fundAndBond(alice, _min(), aliceKey);
        vm.expectEmit(address(grid));
        emit IBonding.OperatorSet(_role(), alice, alice);
        _setOperatorAs(alice, address(0));
        assertEq(_info(alice).operator, alice);
        assertEq(_ownerOfKey(alice), alice);
        assertEq(_ownerOfKey(aliceKey), address(0));
    }

    function test_setOperator_sameKey_keepsMapping() public {
        _fundAndBond(alice, _min(), aliceKey);
        _setOperatorAs(alice, aliceKey);
        assertEq(_ownerOfKey(aliceKey), alice);
    }

    function test_setOperator_worksWhileUnbonding() public {
        _fundAndBond(alice, _min(), address(0));
        _requestUnbondAs(alice, _min());
        _setOperatorAs(alice, aliceKey);
        assertEq(_ownerOfKey(aliceKey), alice);
    }

    function test_setOperator_revertsWhenTaken() public {
        _fundAndBond(alice, _min(), aliceKey);
        _fundAndBond(bob, _min(), address(0));
        vm.expectRevert(abi.encodeWithSelector(IBonding.OperatorTaken.selector, aliceKey, alice));
        _setOperatorAs(bob, aliceKey);
    }

    function test_setOperator_revertsWhenNotBonded() public {
        vm.expectRevert(abi.encodeWithSelector(IBonding.NotBonded.selector, alice));
        _setOperatorAs(alice, aliceKey);
    }

    // ---------------------------------------------------------------- operator history

    function _operatorAt(address who, uint256 timestamp) internal view returns (address) {
        return harness.harnessOperatorAt(_role(), who, uint64(timestamp));
    }

    function test_operatorAt_isZeroBeforeTheBond() public {
        vm.warp(1_000);
        _fundAndBond(alice, _min(), aliceKey);
        assertEq(_operatorAt(alice, 999), address(0));
        assertEq(_operatorAt(alice, 1_000), aliceKey);
        assertEq(_operatorAt(bob, 1_000), address(0));
    }

    function test_operatorAt_ownerWhenBondedWithoutKey() public {
        _fundAndBond(alice, _min(), address(0));
        assertEq(_operatorAt(alice, block.timestamp), alice);
    }

    /// @dev Rotating a key keeps the old one for every moment before the rotation: receipts the old key signed
    /// stay checkable, and the new key cannot sign for the past.
    function testFuzz_operatorAt_keepsKeyHistory(uint256 bondedAt, uint256 rotatedAfter, uint256 probe) public {
        bondedAt = bound(bondedAt, 1, 1e10);
        rotatedAfter = bound(rotatedAfter, 1, 365 days);
        uint256 rotatedAt = bondedAt + rotatedAfter;
        probe = bound(probe, 0, rotatedAt + 365 days);
        vm.warp(bondedAt);
        _fundAndBond(alice, _min(), aliceKey);
        vm.warp(rotatedAt);
        vm.expectEmit(address(grid));
        emit IBonding.OperatorSet(_role(), alice, bobKey);
        _setOperatorAs(alice, bobKey);

        address expected = probe < bondedAt ? address(0) : probe < rotatedAt ? aliceKey : bobKey;
        assertEq(_operatorAt(alice, probe), expected);
        // the live mapping only knows the new key
        assertEq(_ownerOfKey(bobKey), alice);
        assertEq(_ownerOfKey(aliceKey), address(0));
    }

    function test_operatorAt_lastRotationInABlockWins() public {
        _fundAndBond(alice, _min(), aliceKey);
        vm.warp(block.timestamp + 10);
        _setOperatorAs(alice, bobKey);
        _setOperatorAs(alice, address(0));
        assertEq(_operatorAt(alice, block.timestamp - 1), aliceKey);
        assertEq(_operatorAt(alice, block.timestamp), alice);
    }

    function test_operatorAt_isZeroAfterFullWithdrawal() public {
        _fundAndBond(alice, _min(), aliceKey);
        uint256 bondedAt = block.timestamp;
        _requestUnbondAs(alice, _min());
        vm.warp(block.timestamp + _delayView());
        _withdrawAs(alice);
        assertEq(_operatorAt(alice, block.timestamp), address(0));
        assertEq(_operatorAt(alice, block.timestamp - 1), aliceKey, "the key still signed before it left");
        assertEq(_operatorAt(alice, bondedAt), aliceKey);
    }

    function test_operatorAt_keptAfterPartialWithdrawal() public {
        _fundAndBond(alice, 3 * _min(), aliceKey);
        _requestUnbondAs(alice, _min());
        vm.warp(block.timestamp + _delayView());
        _withdrawAs(alice);
        assertEq(_operatorAt(alice, block.timestamp), aliceKey);
    }

    function test_operatorAt_isZeroAfterFullSlash() public {
        _fundAndBond(alice, _min(), aliceKey);
        vm.warp(block.timestamp + 5);
        harness.harnessSlash(_role(), alice, type(uint256).max);
        assertEq(_operatorAt(alice, block.timestamp), address(0));
        assertEq(_operatorAt(alice, block.timestamp - 1), aliceKey);
    }

    function test_operatorAt_newBondAfterExitStartsANewKey() public {
        _fundAndBond(alice, _min(), aliceKey);
        _requestUnbondAs(alice, _min());
        vm.warp(block.timestamp + _delayView());
        _withdrawAs(alice);
        uint256 leftAt = block.timestamp;
        vm.warp(block.timestamp + 100);
        _fundAndBond(alice, _min(), bobKey);
        assertEq(_operatorAt(alice, leftAt - 1), aliceKey);
        assertEq(_operatorAt(alice, leftAt + 50), address(0), "no key while it had no bond");
        assertEq(_operatorAt(alice, block.timestamp), bobKey);
    }

    // ---------------------------------------------------------------- slash (internal hook)

    function test_slash_takesActiveFirst() public {
        _fundAndBond(alice, 3 * _min(), address(0));
        _requestUnbondAs(alice, _min());
        vm.expectEmit(address(grid));
        emit IBonding.BondSlashed(_role(), alice, _min());
        uint256 slashed = harness.harnessSlash(_role(), alice, _min());
        assertEq(slashed, _min());
        IBonding.BondInfo memory b = _info(alice);
        assertEq(b.amount, _min());
        assertEq(b.unbonding, _min());
        assertEq(b.slashed, _min());
        assertTrue(b.active);
        assertEq(_total(), 2 * _min());
        assertEq(aipg.balanceOf(address(grid)), 3 * _min(), "slashed tokens stay in the diamond");
    }

    function test_slash_thenUnbonding() public {
        _fundAndBond(alice, 2 * _min(), address(0));
        _requestUnbondAs(alice, _min());
        uint256 slashed = harness.harnessSlash(_role(), alice, _min() + 5);
        assertEq(slashed, _min() + 5);
        IBonding.BondInfo memory b = _info(alice);
        assertEq(b.amount, 0);
        assertEq(b.unbonding, _min() - 5);
        assertFalse(b.active);
        assertFalse(harness.harnessIsActive(_role(), alice));
        assertEq(_total(), _min() - 5);
    }

    function test_slash_capsAtBond_andReleasesKey() public {
        _fundAndBond(alice, 2 * _min(), aliceKey);
        _requestUnbondAs(alice, _min());
        vm.expectEmit(address(grid));
        emit IBonding.BondSlashed(_role(), alice, 2 * _min());
        uint256 slashed = harness.harnessSlash(_role(), alice, type(uint256).max);
        assertEq(slashed, 2 * _min());
        IBonding.BondInfo memory b = _info(alice);
        assertEq(b.amount, 0);
        assertEq(b.unbonding, 0);
        assertEq(b.unbondReadyAt, 0);
        assertEq(b.operator, address(0));
        assertEq(b.slashed, 2 * _min());
        assertEq(harness.harnessOwnerOf(_role(), aliceKey), address(0));
        assertEq(_total(), 0);

        // nothing left to withdraw; the owner may bond afresh
        vm.warp(block.timestamp + UNBOND_DELAY);
        vm.expectRevert(abi.encodeWithSelector(IBonding.NothingUnbonding.selector, alice));
        _withdrawAs(alice);
        _fundAndBond(alice, _min(), aliceKey);
        assertEq(_info(alice).slashed, 2 * _min(), "history kept");
    }

    function test_slash_belowMinimum_deactivatesUntilToppedUp() public {
        _fundAndBond(alice, _min(), address(0));
        harness.harnessSlash(_role(), alice, 1);
        assertFalse(_isActive(alice));
        assertEq(_ownerOfKey(alice), alice, "key kept while something is bonded");
        _fund(alice, 1);
        _increaseAs(alice, 1);
        assertTrue(_isActive(alice));
    }

    function test_slash_belowMinimum_onlyFullUnbondAllowed() public {
        _fundAndBond(alice, _min(), address(0));
        harness.harnessSlash(_role(), alice, 1);
        vm.expectRevert(abi.encodeWithSelector(IBonding.BondTooLow.selector, _min() - 2, _min()));
        _requestUnbondAs(alice, 1);
        _requestUnbondAs(alice, _min() - 1);
        assertEq(_info(alice).unbonding, _min() - 1);
    }

    function test_slash_nothingBonded_returnsZeroWithoutEvent() public {
        vm.recordLogs();
        assertEq(harness.harnessSlash(_role(), alice, 1e18), 0);
        assertEq(vm.getRecordedLogs().length, 0);
        _fundAndBond(alice, _min(), address(0));
        assertEq(harness.harnessSlash(_role(), alice, 0), 0);
    }

    function test_slash_unbondingToZero_clearsReadyAt() public {
        _fundAndBond(alice, 2 * _min(), address(0));
        _requestUnbondAs(alice, _min());
        harness.harnessSlash(_role(), alice, 2 * _min() - 1);
        IBonding.BondInfo memory b = _info(alice);
        assertEq(b.amount, 0);
        assertEq(b.unbonding, 1);
        harness.harnessSlash(_role(), alice, 1);
        assertEq(_info(alice).unbondReadyAt, 0);
    }

    function testFuzz_slash_conserves(uint256 bonded, uint256 unbond, uint256 amount) public {
        bonded = bound(bonded, _min(), 1e30);
        unbond = bound(unbond, 0, bonded);
        if (bonded - unbond != 0 && bonded - unbond < _min()) unbond = bonded;
        amount = bound(amount, 0, 2e30);
        _fundAndBond(alice, bonded, address(0));
        _fundAndBond(bob, _min(), address(0));
        if (unbond != 0) _requestUnbondAs(alice, unbond);

        uint256 slashed = harness.harnessSlash(_role(), alice, amount);
        uint256 expected = amount < bonded ? amount : bonded;
        assertEq(slashed, expected);
        IBonding.BondInfo memory b = _info(alice);
        assertEq(b.amount + b.unbonding, bonded - expected);
        uint256 activeBefore = bonded - unbond;
        assertEq(b.amount, amount < activeBefore ? activeBefore - amount : 0, "active first");
        assertEq(b.slashed, expected);
        assertEq(_total(), bonded - expected + _min());
        assertEq(_isActive(alice), b.amount >= _min());
        assertEq(_info(bob).amount, _min(), "other bonds untouched");
        assertEq(aipg.balanceOf(address(grid)), bonded + _min());
    }
}
