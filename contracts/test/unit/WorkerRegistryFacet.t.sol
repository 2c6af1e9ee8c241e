// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BondingBehaviour} from "../utils/BondingBehaviour.sol";
import {IBonding} from "../../src/interfaces/IBonding.sol";

/// @notice Every bonding behaviour through WorkerRegistryFacet, plus worker-specific checks.
contract WorkerRegistryFacetTest is BondingBehaviour {
    function _role() internal pure override returns (IBonding.Role) {
        return IBonding.Role.Worker;
    }

    function _min() internal pure override returns (uint256) {
        return WORKER_MIN;
    }

    function _bondAs(address who, uint256 amount, address operator) internal override {
        vm.prank(who);
        grid.bondWorker(amount, operator);
    }

    function _increaseAs(address who, uint256 amount) internal override {
        vm.prank(who);
        grid.increaseWorkerBond(amount);
    }

    function _requestUnbondAs(address who, uint256 amount) internal override {
        vm.prank(who);
        grid.requestWorkerUnbond(amount);
    }

    function _cancelAs(address who) internal override {
        vm.prank(who);
        grid.cancelWorkerUnbond();
    }

    function _withdrawAs(address who) internal override {
        vm.prank(who);
        grid.withdrawWorkerBond();
    }

    function _setOperatorAs(address who, address operator) internal override {
        vm.prank(who);
        grid.setWorkerOperator(operator);
    }

    function _info(address who) internal view override returns (IBonding.BondInfo memory) {
        return grid.workerBond(who);
    }

    function _ownerOfKey(address operator) internal view override returns (address) {
        return grid.workerOf(operator);
    }

    function _isActive(address who) internal view override returns (bool) {
        return grid.isActiveWorker(who);
    }

    function _total() internal view override returns (uint256) {
        return grid.totalWorkerBonded();
    }

    function _minimumView() internal view override returns (uint256) {
        return grid.workerMinimumBond();
    }

    function _delayView() internal view override returns (uint64) {
        return grid.workerUnbondDelay();
    }

    // ---------------------------------------------------------------- worker-specific

    function test_roles_areIndependent() public {
        _bondWorker(alice, WORKER_MIN);
        assertTrue(grid.isActiveWorker(alice));
        assertFalse(grid.isActiveValidator(alice));
        assertEq(grid.validatorOf(alice), address(0));
        assertEq(grid.totalValidatorBonded(), 0);
        assertEq(grid.validatorBond(alice).amount, 0);
        // the same key may serve one owner in both roles, or different owners per role
        _bondValidator(bob, VALIDATOR_MIN);
        vm.prank(bob);
        grid.setValidatorOperator(alice);
        assertEq(grid.validatorOf(alice), bob);
        assertEq(grid.workerOf(alice), alice);
    }

    function test_workerBond_unknownOwner_isEmpty() public view {
        IBonding.BondInfo memory b = grid.workerBond(alice);
        assertEq(b.amount + b.unbonding + b.slashed + b.unbondReadyAt, 0);
        assertEq(b.operator, address(0));
        assertFalse(b.active);
    }
}
