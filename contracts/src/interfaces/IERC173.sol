// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title ERC-173 ownership, extended with a two-step transfer (`pendingOwner`, `acceptOwnership`).
interface IERC173 {
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);

    error NotOwner(address caller);
    error NotPendingOwner(address caller);

    function owner() external view returns (address owner_);
    function pendingOwner() external view returns (address pendingOwner_);
    /// @notice Starts a transfer; `_newOwner` must call `acceptOwnership`. address(0) cancels a pending transfer.
    function transferOwnership(address _newOwner) external;
    function acceptOwnership() external;
}
