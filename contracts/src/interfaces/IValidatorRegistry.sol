// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IBonding} from "./IBonding.sol";

/// @title Validator bonds (minimum 10,000 AIPG). Only a bond's owner can ever withdraw it.
interface IValidatorRegistry is IBonding {
    function bondValidator(uint256 amount, address operator) external;
    function increaseValidatorBond(uint256 amount) external;
    function requestValidatorUnbond(uint256 amount) external;
    function cancelValidatorUnbond() external;
    function withdrawValidatorBond() external;
    function setValidatorOperator(address operator) external;

    function validatorBond(address owner) external view returns (BondInfo memory);
    function validatorOf(address operator) external view returns (address owner);
    function isActiveValidator(address owner) external view returns (bool);
    function validatorMinimumBond() external view returns (uint256);
    function validatorUnbondDelay() external view returns (uint64);
    function totalValidatorBonded() external view returns (uint256);
    /// @notice Owners with an active validator bond, for stake-weighted assignment.
    function activeValidators() external view returns (address[] memory);
}
