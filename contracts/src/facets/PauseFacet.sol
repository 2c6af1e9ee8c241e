// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IPausable} from "../interfaces/IPausable.sol";
import {LibDiamond} from "../libraries/LibDiamond.sol";
import {LibGrid} from "../libraries/LibGrid.sol";

/// @title Emergency pause (owner only). Stops new bonds, deposits and settlements; never a withdrawal.
contract PauseFacet is IPausable {
    /// @notice Pauses new bonds, deposits and settlements. Owner only.
    /// @dev Reverts `EnforcedPause` when already paused.
    function pause() external {
        LibDiamond.enforceIsContractOwner();
        LibGrid.Layout storage g = LibGrid.layout();
        if (g.paused) revert EnforcedPause();
        g.paused = true;
        emit Paused(msg.sender);
    }

    /// @notice Lifts the pause. Owner only.
    /// @dev Reverts `ExpectedPause` when not paused.
    function unpause() external {
        LibDiamond.enforceIsContractOwner();
        LibGrid.Layout storage g = LibGrid.layout();
        if (!g.paused) revert ExpectedPause();
        g.paused = false;
        emit Unpaused(msg.sender);
    }

    /// @notice Whether the diamond is paused.
    function paused() external view returns (bool) {
        return LibGrid.layout().paused;
    }
}
