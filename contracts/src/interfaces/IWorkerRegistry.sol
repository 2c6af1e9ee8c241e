// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IBonding} from "./IBonding.sol";

/// @title Worker bonds (minimum 1,000 AIPG). Only a bond's owner can ever withdraw it.
interface IWorkerRegistry is IBonding {
    /// @notice Bonds `amount` (pulled with transferFrom) as a new worker; `operator` 0 means the owner signs.
    function bondWorker(uint256 amount, address operator) external;
    function increaseWorkerBond(uint256 amount) external;
    /// @notice Moves `amount` of the active bond to unbonding; what stays active must be 0 or >= minimum.
    function requestWorkerUnbond(uint256 amount) external;
    function cancelWorkerUnbond() external;
    /// @notice Sends the unbonding amount to its owner once the delay has passed. Works while paused.
    function withdrawWorkerBond() external;
    function setWorkerOperator(address operator) external;

    function workerBond(address owner) external view returns (BondInfo memory);
    /// @notice The owner behind an operator key (an owner is its own operator unless it named another).
    function workerOf(address operator) external view returns (address owner);
    function isActiveWorker(address owner) external view returns (bool);
    function workerMinimumBond() external view returns (uint256);
    function workerUnbondDelay() external view returns (uint64);
    function totalWorkerBonded() external view returns (uint256);
}
