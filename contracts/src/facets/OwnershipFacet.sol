// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC173} from "../interfaces/IERC173.sol";
import {LibDiamond} from "../libraries/LibDiamond.sol";

/// @title ERC-173 ownership with a two-step transfer.
contract OwnershipFacet is IERC173 {
    /// @notice The current owner.
    function owner() external view returns (address owner_) {
        owner_ = LibDiamond.contractOwner();
    }

    /// @notice The address that may call `acceptOwnership`, or address(0).
    function pendingOwner() external view returns (address pendingOwner_) {
        pendingOwner_ = LibDiamond.layout().pendingOwner;
    }

    /// @inheritdoc IERC173
    /// @dev Owner only. Ownership moves only when `_newOwner` calls `acceptOwnership`.
    function transferOwnership(address _newOwner) external {
        LibDiamond.enforceIsContractOwner();
        LibDiamond.layout().pendingOwner = _newOwner;
        emit OwnershipTransferStarted(msg.sender, _newOwner);
    }

    /// @notice Completes a transfer started by `transferOwnership`.
    /// @dev Reverts `NotPendingOwner` unless the caller is the pending owner.
    function acceptOwnership() external {
        if (msg.sender != LibDiamond.layout().pendingOwner) revert NotPendingOwner(msg.sender);
        LibDiamond.setContractOwner(msg.sender);
    }
}
