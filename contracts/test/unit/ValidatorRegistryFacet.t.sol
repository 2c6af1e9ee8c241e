// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BondingBehaviour} from "../utils/BondingBehaviour.sol";
import {IBonding} from "../../src/interfaces/IBonding.sol";

/// @notice Every bonding behaviour through ValidatorRegistryFacet, plus validator-specific checks.
contract ValidatorRegistryFacetTest is BondingBehaviour {
    function _role() internal pure override returns (IBonding.Role) {
        return IBonding.Role.Validator;
    }

    function _min() internal pure override returns (uint256) {
        return VALIDATOR_MIN;
    }

    function _bondAs(address who, uint256 amount, address operator) internal override {
        vm.prank(who);
        grid.bondValidator(amount, operator);
    }

    function _increaseAs(address who, uint256 amount) internal override {
        vm.prank(who);
        grid.increaseValidatorBond(amount);
    }

    function _requestUnbondAs(address who, uint256 amount) internal override {
        vm.prank(who);
        grid.requestValidatorUnbond(amount);
    }

    function _cancelAs(address who) internal override {
        vm.prank(who);
        grid.cancelValidatorUnbond();
    }

    function _withdrawAs(address who) internal override {
        vm.prank(who);
        grid.withdrawValidatorBond();
    }

    function _setOperatorAs(address who, address operator) internal override {
        vm.prank(who);
        grid.setValidatorOperator(operator);
    }

    function _info(address who) internal view override returns (IBonding.BondInfo memory) {
        return grid.validatorBond(who);
    }

    function _ownerOfKey(address operator) internal view override returns (address) {
        return grid.validatorOf(operator);
    }

    function _isActive(address who) internal view override returns (bool) {
        return grid.isActiveValidator(who);
    }

    function _total() internal view override returns (uint256) {
        return grid.totalValidatorBonded();
    }

    function _minimumView() internal view override returns (uint256) {
        return grid.validatorMinimumBond();
    }

    function _delayView() internal view override returns (uint64) {
        return grid.validatorUnbondDelay();
    }

    // ---------------------------------------------------------------- active set

    function _contains(address[] memory set, address who) internal pure returns (bool) {
        for (uint256 i; i < set.length; ++i) {
            if (set[i] == who) return true;
        }
        return false;
    }

    function test_activeValidators_emptyAtStart() public view {
        assertEq(grid.activeValidators().length, 0);
    }

    function test_activeValidators_tracksMinimumBothWays() public {
        _bondValidator(alice, VALIDATOR_MIN);
        _bondValidator(bob, 2 * VALIDATOR_MIN);
        assertEq(grid.activeValidators().length, 2);

        // full unbond: out; cancel: back in
        _requestUnbondAs(alice, VALIDATOR_MIN);
        assertFalse(_contains(grid.activeValidators(), alice));
        assertEq(grid.activeValidators().length, 1);
        _cancelAs(alice);
        assertTrue(_contains(grid.activeValidators(), alice));

        // partial unbond to exactly the minimum: stays
        _requestUnbondAs(bob, VALIDATOR_MIN);
        assertTrue(_contains(grid.activeValidators(), bob));

        // slash below the minimum: out; top up: back in
        harness.harnessSlash(IBonding.Role.Validator, bob, 1);
        assertFalse(_contains(grid.activeValidators(), bob));
        _fund(bob, 1);
        _increaseAs(bob, 1);
        assertTrue(_contains(grid.activeValidators(), bob));

        // withdrawal of everything: out, and a worker bond never shows up here
        _requestUnbondAs(alice, VALIDATOR_MIN);
        vm.warp(block.timestamp + UNBOND_DELAY);
        _withdrawAs(alice);
        _bondWorker(alice, WORKER_MIN);
        address[] memory set = grid.activeValidators();
        assertEq(set.length, 1);
        assertEq(set[0], bob);
    }

    function _validatorAt(uint256 i) internal pure returns (address) {
        return vm.addr(0x1000 + i);
    }

    function testFuzz_activeValidators_matchesIsActive(uint8 n, uint256 seed) public {
        n = uint8(bound(n, 1, 12));
        for (uint256 i; i < n; ++i) {
            address v = _validatorAt(i);
            _bondValidator(v, VALIDATOR_MIN + (uint256(keccak256(abi.encode(seed, i))) % VALIDATOR_MIN));
            uint256 action = uint256(keccak256(abi.encode(seed, i, "a"))) % 3;
            if (action == 1) _requestUnbondAs(v, grid.validatorBond(v).amount);
            if (action == 2) harness.harnessSlash(IBonding.Role.Validator, v, VALIDATOR_MIN);
        }
        address[] memory set = grid.activeValidators();
        uint256 count;
        for (uint256 i; i < n; ++i) {
            address v = _validatorAt(i);
            bool active = grid.isActiveValidator(v);
            assertEq(_contains(set, v), active);
            assertEq(active, grid.validatorBond(v).amount >= VALIDATOR_MIN);
            if (active) ++count;
        }
        assertEq(set.length, count);
    }

    // ---------------------------------------------------------------- weight checkpoints (audit seats)

    function _weightAt(address v, uint256 blockNumber) internal view returns (uint256) {
        return harness.harnessWeightAt(v, uint48(blockNumber));
    }

    /// @dev Audit seats read the weights of the block before settlement: each block's changes are recorded
    /// at that block and never rewrite an earlier one.
    function test_weightAt_followsActiveBondBlockByBlock() public {
        vm.roll(100);
        _fundAndBond(alice, 2 * VALIDATOR_MIN, address(0));
        vm.roll(101);
        _fund(alice, VALIDATOR_MIN);
        _increaseAs(alice, VALIDATOR_MIN);
        vm.roll(102);
        _requestUnbondAs(alice, VALIDATOR_MIN);
        vm.roll(103);
        _requestUnbondAs(alice, 2 * VALIDATOR_MIN); // fully unbonding: weight 0
        vm.roll(104);
        _cancelAs(alice);

        assertEq(_weightAt(alice, 99), 0);
        assertEq(_weightAt(alice, 100), 2 * VALIDATOR_MIN);
        assertEq(_weightAt(alice, 101), 3 * VALIDATOR_MIN);
        assertEq(_weightAt(alice, 102), 2 * VALIDATOR_MIN);
        assertEq(_weightAt(alice, 103), 0);
        assertEq(_weightAt(alice, 104), 3 * VALIDATOR_MIN);
        assertEq(_weightAt(alice, 1_000), 3 * VALIDATOR_MIN);
    }

    function test_weightAt_isZeroBelowTheMinimumAfterSlash() public {
        vm.roll(10);
        _fundAndBond(alice, VALIDATOR_MIN, address(0));
        vm.roll(11);
        harness.harnessSlash(IBonding.Role.Validator, alice, 1);
        assertEq(_weightAt(alice, 10), VALIDATOR_MIN);
        assertEq(_weightAt(alice, 11), 0, "inactive validators weigh nothing");
    }

    function test_weightAt_lastChangeInABlockCounts() public {
        vm.roll(50);
        _fundAndBond(alice, 2 * VALIDATOR_MIN, address(0));
        _requestUnbondAs(alice, VALIDATOR_MIN);
        _fund(alice, 5 * VALIDATOR_MIN);
        _increaseAs(alice, 5 * VALIDATOR_MIN);
        assertEq(_weightAt(alice, 49), 0);
        assertEq(_weightAt(alice, 50), 6 * VALIDATOR_MIN);
    }

    function testFuzz_weightAt_pastBlocksNeverChange(uint256 first, uint256 second, uint8 gap) public {
        first = bound(first, VALIDATOR_MIN, 100 * VALIDATOR_MIN);
        second = bound(second, 1, 100 * VALIDATOR_MIN);
        vm.roll(1_000);
        _fundAndBond(alice, first, address(0));
        vm.roll(1_000 + uint256(gap) + 1);
        _fund(alice, second);
        _increaseAs(alice, second);
        assertEq(_weightAt(alice, 1_000), first);
        assertEq(_weightAt(alice, 1_000 + uint256(gap)), first);
        assertEq(_weightAt(alice, block.number), first + second);
    }

    function test_weightAt_workersHaveNoWeight() public {
        _bondWorker(bob, 5 * WORKER_MIN);
        assertEq(_weightAt(bob, block.number), 0);
    }
}
