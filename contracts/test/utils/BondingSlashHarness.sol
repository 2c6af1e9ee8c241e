// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IBonding} from "../../src/interfaces/IBonding.sol";
import {LibBonding} from "../../src/libraries/LibBonding.sol";

/// @notice Test-only facet exposing LibBonding's internal slash hook (what the audit facet calls) and its
/// histories (operator keys by timestamp, validator weights by block).
/// Tests add it through an announced cut; it is never part of a deployment.
contract BondingSlashHarness {
    function harnessSlash(IBonding.Role role, address bondOwner, uint256 amount) external returns (uint256) {
        return LibBonding.slash(role, bondOwner, amount);
    }

    function harnessBondedAmount(IBonding.Role role, address bondOwner) external view returns (uint256) {
        return LibBonding.bondedAmount(role, bondOwner);
    }

    function harnessIsActive(IBonding.Role role, address bondOwner) external view returns (bool) {
        return LibBonding.isActive(role, bondOwner);
    }

    function harnessOwnerOf(IBonding.Role role, address operator) external view returns (address) {
        return LibBonding.ownerOf(role, operator);
    }

    function harnessOperatorAt(IBonding.Role role, address bondOwner, uint64 timestamp)
        external
        view
        returns (address)
    {
        return LibBonding.operatorAt(role, bondOwner, timestamp);
    }

    function harnessWeightAt(address bondOwner, uint48 blockNumber) external view returns (uint256) {
        return LibBonding.weightAt(bondOwner, blockNumber);
    }
}
