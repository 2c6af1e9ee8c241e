// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IPausable} from "../interfaces/IPausable.sol";

/// @title Deployment-wide settings every facet reads: the AIPG token, the treasury and the pause flag.
library LibGrid {
    /// @custom:storage-location erc7201:aipg.storage.Grid
    struct Layout {
        IERC20 token;
        address treasury;
        bool paused;
    }

    // keccak256(abi.encode(uint256(keccak256("aipg.storage.Grid")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 internal constant STORAGE_SLOT = 0xd3b10adafcb1c80330868bb56856ed26425f8c112f4cacb746286c4a46e59b00;

    function layout() internal pure returns (Layout storage l) {
        bytes32 slot = STORAGE_SLOT;
        assembly {
            l.slot := slot
        }
    }

    function token() internal view returns (IERC20) {
        return layout().token;
    }

    /// @dev Guards entry points that add money or work (bond, deposit, settle); never withdrawals.
    function requireNotPaused() internal view {
        if (layout().paused) revert IPausable.EnforcedPause();
    }
}
