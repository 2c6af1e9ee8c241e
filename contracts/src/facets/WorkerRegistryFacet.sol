// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IWorkerRegistry} from "../interfaces/IWorkerRegistry.sol";
import {LibBonding} from "../libraries/LibBonding.sol";

/// @title Worker bonds: a thin facet over LibBonding (role 0). Every selector here is immutable.
contract WorkerRegistryFacet is IWorkerRegistry {
    Role private constant ROLE = Role.Worker;

    /// @notice Bonds `amount` AIPG (pulled from the caller) as a new worker; `operator` 0 means the caller
    /// signs.
    /// @dev Reverts `EnforcedPause`, `AlreadyBonded`, `BondTooLow` or `OperatorTaken`.
    function bondWorker(uint256 amount, address operator) external {
        LibBonding.bond(ROLE, msg.sender, amount, operator);
    }

    /// @notice Adds `amount` AIPG (pulled from the caller) to the caller's worker bond.
    /// @dev Reverts `EnforcedPause`, `ZeroAmount` or `NotBonded`.
    function increaseWorkerBond(uint256 amount) external {
        LibBonding.increase(ROLE, msg.sender, amount);
    }

    /// @notice Moves `amount` of the caller's active bond to unbonding and restarts the delay; what stays
    /// active must be 0 or >= the minimum.
    /// @dev Reverts `ZeroAmount`, `NotBonded`, `InsufficientBond` or `BondTooLow` (remainder).
    function requestWorkerUnbond(uint256 amount) external {
        LibBonding.requestUnbond(ROLE, msg.sender, amount);
    }

    /// @notice Moves everything the caller has unbonding back to the active bond.
    /// @dev Reverts `NothingUnbonding`.
    function cancelWorkerUnbond() external {
        LibBonding.cancelUnbond(ROLE, msg.sender);
    }

    /// @notice Sends the caller's unbonding amount to the caller once the delay has passed. Works while
    /// paused.
    /// @dev Always to `msg.sender`'s own bond. Reverts `NothingUnbonding` or `UnbondNotReady`.
    function withdrawWorkerBond() external {
        LibBonding.withdraw(ROLE, msg.sender);
    }

    /// @notice Names the hot key that signs for the caller's bond; frees the previous key.
    /// @dev address(0) makes the owner its own operator. Reverts `NotBonded` or `OperatorTaken`.
    function setWorkerOperator(address operator) external {
        LibBonding.setOperator(ROLE, msg.sender, operator);
    }

    /// @notice The worker bond posted by `owner` (all zero if none).
    function workerBond(address owner) external view returns (BondInfo memory) {
        return LibBonding.bondInfo(ROLE, owner);
    }

    /// @notice The bond owner behind an operator key; address(0) if the key belongs to no bond.
    function workerOf(address operator) external view returns (address owner) {
        return LibBonding.ownerOf(ROLE, operator);
    }

    /// @notice Whether `owner`'s active bond is at least the minimum.
    function isActiveWorker(address owner) external view returns (bool) {
        return LibBonding.isActive(ROLE, owner);
    }

    /// @notice Minimum active bond for a worker, set at deployment.
    function workerMinimumBond() external view returns (uint256) {
        return LibBonding.layout(ROLE).minimum;
    }

    /// @notice Seconds between an unbond request and its withdrawal, set at deployment.
    function workerUnbondDelay() external view returns (uint64) {
        return LibBonding.layout(ROLE).unbondDelay;
    }

    /// @notice Sum of all worker bonds, active and unbonding.
    function totalWorkerBonded() external view returns (uint256) {
        return LibBonding.layout(ROLE).totalBonded;
    }
}
