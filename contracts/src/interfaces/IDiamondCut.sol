// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IDiamond} from "./IDiamond.sol";

/// @title EIP-2535 cut.
interface IDiamondCut is IDiamond {
    /// @notice Adds, replaces or removes functions, then optionally delegatecalls `_init` with `_calldata`.
    /// @dev Reverts with `ImmutableSelector` for any Replace or Remove of a selector marked immutable.
    function diamondCut(FacetCut[] calldata _diamondCut, address _init, bytes calldata _calldata) external;
}
